"""Control-panel staff from IdP groups, through the GraphQL Account API (``[stores.X.staff]``):
:mod:`.plan` says what to change, :mod:`.service` queues it and carries it out on budget."""
