"""Writes from outside, attributed (SPEC §13): the database records every write to a host's
counters or capacity and to a node's host or allocation that a connection other than Nodefleet's
makes, and the audit names them under the drift they explain.

Recording is the database's: one trigger function (SECURITY DEFINER, so an outside writer needs
no right on hosts_outsidewrite) and one row trigger on each of hosts_host and nodes_node, installed
by the migrations (install_triggers). The trigger's arguments are the host column (`id`, `host_id`)
then the columns it tracks; its WHEN condition exempts Nodefleet's own connections, which carry
the mark `nodefleet.app=1` from connect time (a startup option in DATABASES, config/settings.py)
or, where OUTSIDE_WRITES_APP_ROLE names one, connect as that database role. So Nodefleet's writes
cost one WHEN per row and send no extra statement. The function's COMMENT (JSON) says since when
recording runs, the columns each trigger tracks and the exempt role (a restore keeps it).

`hosts` never imports `nodes`: the node table and NodeLog are reached by the app registry.
"""

from hosts.outside.attribution import (
    Attribution,
    HostWindow,
    Write,
    attributed,
    attribution,
    changes_text,
    explains_counter,
    host_windows,
    more_text,
    not_recorded_notice,
    outside_writes,
    outside_writes_prune,
    parse_time,
    timestamp,
    unknown_text,
    write_json,
    write_text,
)
from hosts.outside.triggers import (
    BATCH,
    FUNCTION,
    HOST_COLUMNS,
    LISTED_PER_HOST,
    MARK,
    MARK_OPTION,
    NODE_COLUMNS,
    TRIGGER,
    app_role,
    install_present,
    install_triggers,
    recording,
    reinstall_if_needed,
    uninstall_triggers,
)

__all__ = [
    "BATCH",
    "FUNCTION",
    "HOST_COLUMNS",
    "LISTED_PER_HOST",
    "MARK",
    "MARK_OPTION",
    "NODE_COLUMNS",
    "TRIGGER",
    "Attribution",
    "HostWindow",
    "Write",
    "app_role",
    "attributed",
    "attribution",
    "changes_text",
    "explains_counter",
    "host_windows",
    "install_present",
    "install_triggers",
    "more_text",
    "not_recorded_notice",
    "outside_writes",
    "outside_writes_prune",
    "parse_time",
    "recording",
    "reinstall_if_needed",
    "timestamp",
    "uninstall_triggers",
    "unknown_text",
    "write_json",
    "write_text",
]
