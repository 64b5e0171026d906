from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import db, login
from ..models import User
from ..services import accounts, agents
from . import bp
from .forms import LoginForm


@login.user_loader
def load_user(user_id: str) -> User | None:
    ident, _, version = user_id.partition(":")
    if not ident.isdigit():
        return None
    user = db.session.get(User, int(ident))
    if user is None or str(user.session_version) != version:
        return None  # ended by a supervisor, a password change or a deactivation
    return user


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
            db.session.commit()
            session.clear()
            login_user(result.user)
            return redirect(_safe_next(request.args.get("next")) or url_for("index"))
        db.session.commit()
        status = 429 if result.locked_seconds else 401
        if result.locked_seconds:
            flash(_("Too many failed attempts. Try again in %(seconds)s seconds.",
                    seconds=result.locked_seconds), "error")
        else:
            flash(_("Wrong user or password."), "error")
    return render_template("auth/login.html", form=form), status


bp.add_url_rule("/login", endpoint="login", view_func=login_page, methods=["GET", "POST"])


@bp.post("/logout")
@login_required
def logout() -> Any:
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
