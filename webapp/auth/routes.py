from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import db, login
from ..models import User
from ..services import accounts, agents
from . import bp
from .forms import LoginForm

SESSION_TOKEN = "session_token"  # the cookie's key for the token of its server-side session


@login.user_loader
def load_user(user_id: str) -> User | None:
    """Every request: the cookie's session must still exist on the server (sign-out deletes it) and
    carry the user's current session version (a supervisor's log-out or a new password moves it).
    The session's id is left in `g.user_session_id` for sign-out and the live socket."""
    ident, _, version = user_id.partition(":")
    token = session.get(SESSION_TOKEN)
    if not ident.isdigit() or not isinstance(token, str):
        return None
    found = accounts.find_session(int(ident), token)
    if found is None or str(found[0].session_version) != version:
        return None
    g.user_session_id = found[1]
    return found[0]


@login.unauthorized_handler
def unauthorized() -> Any:
    target = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 401)
        response.headers["HX-Redirect"] = url_for("auth.login")
        return response
    return redirect(target)


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def login_page() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        cfg = current_app.config
        result = accounts.authenticate(form.username.data, form.password.data,
                                       max_failures=cfg["LOGIN_MAX_FAILURES"],
                                       lock_seconds=cfg["LOGIN_LOCK_SECONDS"])
        if result.user is not None:
            agents.on_login(result.user)
            token = accounts.start_session(result.user)
            db.session.commit()
            session.clear()
            login_user(result.user)
            session[SESSION_TOKEN] = token
            return redirect(_safe_next(request.args.get("next")) or url_for("index"))
        db.session.commit()
        status = 429 if result.locked_seconds else 401
        if result.locked_seconds:
            flash(ngettext("Too many failed attempts. Try again in %(num)s second.",
                           "Too many failed attempts. Try again in %(num)s seconds.", result.locked_seconds), "error")
        else:
            flash(_("Wrong user or password."), "error")
    return render_template("auth/login.html", form=form), status


bp.add_url_rule("/login", endpoint="login", view_func=login_page, methods=["GET", "POST"])


@bp.post("/logout")
@login_required
def logout() -> Any:
    """Ends this browser's session on the server (a copy of the cookie stops working) and its sockets."""
    accounts.end_session(current_user, g.user_session_id)  # set by load_user for this request
    agents.on_logout(current_user)
    db.session.commit()
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.post("/language")
def language() -> Any:
    lang = request.form.get("lang", "")
    if lang not in current_app.config["LANGUAGES"]:
        abort(400)
    if current_user.is_authenticated:
        current_user.language = lang
        db.session.commit()
    session["lang"] = lang
    return redirect(_safe_next(request.form.get("next")) or url_for("index"))
