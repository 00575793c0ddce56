"""Passenger's startup file (it looks for passenger_wsgi.py in the app root and
takes its `application`): the same entry as every other system."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wsgi_entry import application  # noqa: E402,F401
