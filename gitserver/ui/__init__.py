"""The web UI under ``/ui``: server-rendered pages behind the same tokens as the API.

Modules: ``routes`` (the sub-application and its routing), ``session`` (login sessions,
cookies, CSRF), ``context`` (what a view gets; security headers), ``html`` (escaping
templates and the layout), ``highlight`` (Pygments), ``diffview`` (unified and side by
side diffs), ``gitread`` (calls into the storage read layer), ``static`` (CSS/JS), and one
``views_*`` module per group of pages. See docs/ui.md.
"""

from gitserver.ui.routes import UiApp

__all__ = ["UiApp"]
