"""manage.py agent_token HOST [--rotate]: issues a host's agent token (§9) and prints it once,
alone, as the last line of stdout (only its SHA-256 is stored).

Exit 0 issued; 1 refused (the host already has a token and --rotate was not given, or no host
has that id or name — as api_token does for an unknown user); 2 usage error."""

import uuid

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from hosts.agent_tokens import agent_token_issue
from hosts.models import Host


def _host(ref: str) -> Host:
    try:
        by_id = Host.objects.filter(pk=uuid.UUID(ref))
    except ValueError:
        by_id = Host.objects.none()
    host = by_id.first() or Host.objects.filter(name=ref).first()
    if host is None:
        raise CommandError(f"No host with id or name {ref!r}.", returncode=1)
    return host


class Command(BaseCommand):
    help = "Issues a host's agent token and prints it once (HOST: id or name)."

    def add_arguments(self, parser):
        parser.add_argument("host", metavar="HOST", help="host id or name")
        parser.add_argument(
            "--rotate", action="store_true", help="replace the host's token (the old one stops working at once)"
        )

    def handle(self, *args, host: str, rotate: bool, **options):
        target = _host(host)
        try:
            token = agent_token_issue(host=target, rotate=rotate)
        except ApplicationError as error:
            raise CommandError(error.detail, returncode=1) from None
        verb = "Rotated" if rotate else "Issued"
        self.stderr.write(f"{verb} the agent token of host {target.name}; it is shown once:")
        self.stdout.write(token)
