"""The hosts' admin: the Host and CounterRepair admins (audit, repair, agent tokens) and the helpers
every admin of the project shares (large tables, read-only admins, errors as messages)."""

from hosts.admin import hosts  # noqa: F401 -- registers the hosts' admin
