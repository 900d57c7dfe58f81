"""`manage.py db_worker`: django-tasks-db's worker, preceded by the recovery a killed worker
needs and accompanied by the periodic sweep of rollouts (nodes.rollouts.workers): run as many as
you like, on any machine reaching the database."""

import logging
import os
import time

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands.db_worker import Command as LibraryWorker

from nodes.rollouts.workers import Sweeper, worker_id, worker_recover

logger = logging.getLogger("nodes.rollouts")


class Command(LibraryWorker):
    help = (
        "Runs background tasks (rollouts). First fails the tasks that dead workers of this machine "
        "left RUNNING; then, at start and every ROLLOUT_SWEEP_SECONDS, re-enqueues the advance of "
        "every rollout that needs one and has none queued."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(worker_id=worker_id())

    def handle(self, *args, **options):
        reloading_parent = options.get("reload") and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true"
        if not reloading_parent:  # with --reload, the child process does the work
            failed, rollouts = worker_recover()
            if options["verbosity"]:
                self.stderr.write(
                    f"recovered: {failed} task(s) of dead workers failed, {rollouts} rollout(s) re-enqueued"
                )
            Sweeper(settings.ROLLOUT_SWEEP_SECONDS).start()
        while True:
            try:
                return super().handle(*args, **options)
            except DatabaseError as error:
                # The library's loop has no guard: a connection lost while it claims or records a
                # task would end the worker. It starts again on a new connection instead (a task
                # it left RUNNING is covered by the sweep: its rollout has no advance queued).
                if options.get("batch"):
                    raise
                logger.warning("db_worker: database error in the worker loop (%s); starting it again", error)
                connections.close_all()
                time.sleep(1)
