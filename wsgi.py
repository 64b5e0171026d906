"""Entry point for gunicorn: `gunicorn -k gthread --threads 100 wsgi:app`."""
from webapp import create_app

app = create_app()
