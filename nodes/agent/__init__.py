"""Everything about host agents: the agent API (host-token authentication, serializers, views,
urls), the lifecycle of their commands (ack, result, cancel), overdue commands and offline hosts'
gauges, and the simulator `simulate_agents` drives."""
