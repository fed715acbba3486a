//! Loopback fake of the AWS Lambda provisioned-concurrency API.
