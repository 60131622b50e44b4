"""Store pickup as a carrier for oms-graphql."""
