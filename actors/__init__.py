"""Ray actors: the agents, the agent pool and the object-store cache (built by the agent-pool issue)."""
