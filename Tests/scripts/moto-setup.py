#!/usr/bin/env python3
"""Prepares a moto S3 server started with INITIAL_NO_AUTH_ACTION_COUNT=3 for the recording store tests.

Its first three calls (create an IAM user, its access key, and a policy that allows S3) go unauthenticated; every
call after them is checked against IAM, signatures included. Then, with the new key, it creates the bucket.
Prints "ACCESS_KEY_ID SECRET_ACCESS_KEY" on one line.

Usage: moto-setup.py ENDPOINT BUCKET
"""
import json
import sys

import boto3

endpoint, bucket = sys.argv[1], sys.argv[2]
anon = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **anon)
iam.create_user(UserName="gatehouse")
key = iam.create_access_key(UserName="gatehouse")["AccessKey"]
iam.put_user_policy(
    UserName="gatehouse",
    PolicyName="recordings",
    PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
)
s3 = boto3.client(
    "s3", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
)
s3.create_bucket(Bucket=bucket)
print(key["AccessKeyId"], key["SecretAccessKey"])
