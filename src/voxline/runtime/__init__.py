"""The conversation runtime: `agent.AgentRuntime` holds one call over a `transport.Transport`."""
