"""GraphQL at ``/api/v1/graphql`` on the same services, roles and error rules as REST."""
