"""The Lambda functions. Everything under this package is deployed to AWS unchanged by ``aws/``:
it imports only what the Lambda asset carries (Powertools, pydantic, psycopg, boto3), never the
local stand-ins around it."""
