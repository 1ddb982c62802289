"""The council website's web chat: an accessible page, a widget and a JSON API."""
