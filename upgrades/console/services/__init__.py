"""Console services: proposals, approvals, sharing and acceptance, tasks, playbooks."""
