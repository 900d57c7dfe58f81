"""`manage.py db_worker`: django-tasks-db's worker, preceded by the recovery a killed worker
needs (nodes.rollouts.workers): run as many as you like, on any machine reaching the database."""

from django_tasks_db.management.commands.db_worker import Command as LibraryWorker

from nodes.rollouts.workers import worker_id, worker_recover


class Command(LibraryWorker):
    help = (
        "Runs background tasks (rollouts). First fails the tasks that dead workers of this machine "
        "left RUNNING and re-enqueues the advance of every running rollout."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(worker_id=worker_id())

    def handle(self, *args, **options):
        failed, rollouts = worker_recover()
        if options["verbosity"]:
            self.stderr.write(
                f"recovered: {failed} task(s) of dead workers failed, {rollouts} running rollout(s) re-enqueued"
            )
        return super().handle(*args, **options)
