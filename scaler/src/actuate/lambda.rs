//! AWS Lambda actuator: provisioned concurrency through aws-sdk-lambda.
