"""Throttles shared by every worker and app server: fixed-window counts (rates.py, the
RateWindow table or CACHE_URL's cache) and failed authentication per client address
(failures.py), used by the user tokens' and the host agents' authentication and by the API's
write throttle. A Django app (label `throttles`) for its one table; it imports no other app."""
