from django.apps import AppConfig


class NodesConfig(AppConfig):
    name = "nodes"
    verbose_name = "Nodes and images"

    def ready(self):
        from config.http.metrics import register_collector
        from nodes.agent.overdue import publish_agent_gauges
        from nodes.rollouts import hooks  # noqa: F401 -- connects the rollouts' receivers of nodes.changes.signals
        from nodes.rollouts.ticks import publish_rollout_gauges

        register_collector(publish_agent_gauges)  # overdue commands and offline hosts, before each /metrics scrape
        register_collector(publish_rollout_gauges)  # rollouts whose last step failed
