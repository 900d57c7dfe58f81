"""The staff doors: the admin site (login with the TOTP code), the lockout authentication
backend (django-axes), the login log, staff session age and idle limits. Imports no app."""
