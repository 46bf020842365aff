"""``planner serve``: a scenario workbench in the browser.

:class:`~planner.serve.engine.Engine` keeps a region's audit current under edits (new,
moved or deleted facilities, new or closed paths, new gates, populations);
:func:`~planner.serve.app.create_app` serves it as a JSON API and one offline page.
"""

from planner.serve.engine import Engine
from planner.serve.state import EDIT_KINDS, ScenarioFolder, check_edit

__all__ = ["EDIT_KINDS", "Engine", "ScenarioFolder", "check_edit"]
