"""API Gateway with its Cognito authorizer: the event shape, the HTTP server, the API's
definition, its record of what it acknowledged, and the server as a stack component."""
