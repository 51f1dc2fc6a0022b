#!/usr/bin/env python3
"""Source of the admin API's OpenAPI 3.1 document.

Run `python3 docs/openapi.py` after changing routes: it rewrites Sources/HTTPFrontEnd/OpenAPIDocument.swift.
OpenAPIConsistencyTests fails when the router and this document disagree.
"""
import os
import json
S = lambda name: {"$ref": f"#/components/schemas/{name}"}
def obj(props, required=()):
    o = {"type": "object", "properties": props}
    if required: o["required"] = list(required)
    return o
string = {"type": "string"}
slugT = {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}
nameT = {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,200}$"}
idT = {"type": "string", "pattern": "^[A-Za-z0-9-]{1,64}$"}
ttl = {"type": "integer", "minimum": 1, "maximum": 315360000}
ttl0 = {"type": "integer", "minimum": 0, "maximum": 315360000}
cidrs = {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string", "maxLength": 43}}
meta = {"type": "object", "maxProperties": 50, "propertyNames": {"minLength": 1, "maxLength": 64}, "additionalProperties": {"type": "string", "maxLength": 256}}
integer = {"type": "integer", "minimum": 0, "maximum": 9007199254740991}
boolean = {"type": "boolean"}
date = {"type": "string", "format": "date-time"}
strmap = {"type": "object", "additionalProperties": {"type": "string"}}
strs = {"type": "array", "items": string}
schemas = {
 "Error": obj({"error": obj({"code": string, "message": string}, ["code", "message"])}, ["error"]),
 "Project": obj({"slug": string, "description": string, "createdAt": date}, ["slug", "description", "createdAt"]),
 "ProjectCreate": obj({"slug": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}, "description": {"type": "string", "maxLength": 1000}}, ["slug"]),
 "Identity": obj({"id": string, "name": string, "orgRole": {"enum": ["admin", "member", "no-access"]}, "metadata": strmap, "authMethods": strs, "createdAt": date}, ["id", "name", "orgRole", "metadata", "authMethods", "createdAt"]),
 "IdentityCreate": obj({"name": nameT, "orgRole": {"enum": ["admin", "member", "no-access"]}, "metadata": meta}, ["name"]),
 "IdentitySpec": obj({"name": nameT, "orgRole": {"enum": ["admin", "member", "no-access"]}, "metadata": meta}),
 "AccessTokenSettings": obj({"accessTokenTTL": integer, "accessTokenMaxTTL": integer, "accessTokenNumUsesLimit": integer, "accessTokenTrustedIps": strs, "accessTokenPeriod": integer}),
 "AuthMethodSpec": obj({"accessTokenTTL": ttl, "accessTokenMaxTTL": ttl0, "accessTokenNumUsesLimit": integer, "accessTokenTrustedIps": cidrs, "accessTokenPeriod": ttl0, "clientSecretTrustedIps": cidrs, "lockoutEnabled": boolean, "lockoutThreshold": {"type": "integer", "minimum": 1, "maximum": 30}, "lockoutDurationSeconds": {"type": "integer", "minimum": 1, "maximum": 86400}, "lockoutCounterResetSeconds": {"type": "integer", "minimum": 1, "maximum": 3600}, "caCertificate": {"type": "string", "description": "PEM CA certificate (TLS Certificate Auth)"}, "allowedCommonNames": strs}),
 "UniversalAuth": obj({"identityId": string, "clientId": string, "token": S("AccessTokenSettings"), "clientSecretTrustedIps": strs, "lockoutEnabled": boolean, "lockoutThreshold": integer, "lockoutDurationSeconds": integer, "lockoutCounterResetSeconds": integer}, ["identityId", "clientId", "token"]),
 "ClientSecretSpec": obj({"description": {"type": "string", "maxLength": 500}, "ttl": ttl0, "numUsesLimit": integer}),
 "ClientSecret": obj({"id": string, "identityId": string, "description": string, "prefix": string, "ttl": integer, "numUsesLimit": integer, "numUses": integer, "isRevoked": boolean, "createdAt": date}, ["id", "identityId", "prefix", "isRevoked"]),
 "TokenAuth": obj({"identityId": string, "token": S("AccessTokenSettings")}, ["identityId", "token"]),
 "TLSCertAuth": obj({"identityId": string, "caCertificate": string, "allowedCommonNames": strs, "token": S("AccessTokenSettings")}, ["identityId", "caCertificate", "allowedCommonNames"]),
 "AccessToken": obj({"accessToken": string, "expiresIn": integer, "accessTokenMaxTTL": integer, "tokenType": {"const": "Bearer"}}, ["accessToken", "expiresIn", "accessTokenMaxTTL", "tokenType"]),
 "Condition": dict(obj({"$eq": string, "$ne": string, "$in": strs, "$glob": string}), minProperties=1),
 "Permission": obj({"subject": {"enum": ["project", "secrets", "roles", "members", "kms-keys", "*"]}, "actions": {"type": "array", "minItems": 1, "items": {"enum": ["read", "create", "edit", "delete", "encrypt", "decrypt", "mac", "*"]}}, "conditions": {"type": "object", "propertyNames": {"enum": ["name", "path"]}, "additionalProperties": S("Condition")}, "inverted": boolean}, ["subject", "actions"]),
 "Role": obj({"slug": string, "project": string, "description": string, "permissions": {"type": "array", "items": S("Permission")}, "isBuiltIn": boolean}, ["slug", "project", "permissions", "isBuiltIn"]),
 "RoleSpec": obj({"slug": slugT, "description": string, "permissions": {"type": "array", "minItems": 1, "maxItems": 200, "items": S("Permission")}}, ["slug", "permissions"]),
 "RoleGrant": obj({"role": string, "isTemporary": boolean, "temporaryRange": {"type": "string", "pattern": "^[1-9][0-9]{0,6}[smhd]$", "description": "e.g. 30s, 1m, 2h, 3d"}, "temporaryAccessStartTime": date, "temporaryAccessEndTime": date}, ["role"]),
 "Membership": obj({"project": string, "identityId": string, "roles": {"type": "array", "items": S("RoleGrant")}}, ["project", "identityId", "roles"]),
 "PrivilegeSpec": obj({"identityId": string, "slug": slugT, "permissions": {"type": "array", "minItems": 1, "maxItems": 200, "items": S("Permission")}, "isTemporary": boolean, "temporaryRange": {"type": "string", "pattern": "^[1-9][0-9]{0,6}[smhd]$"}, "temporaryAccessStartTime": date}, ["identityId", "slug", "permissions"]),
 "Privilege": obj({"id": string, "project": string, "identityId": string, "slug": string, "permissions": {"type": "array", "items": S("Permission")}, "isTemporary": boolean, "temporaryRange": string, "temporaryAccessStartTime": date, "temporaryAccessEndTime": date}, ["id", "project", "identityId", "slug", "permissions", "isTemporary"]),
 "SecretMetadata": obj({"id": string, "project": string, "name": string, "version": integer, "createdAt": date, "updatedAt": date}, ["id", "project", "name", "version"]),
 "SecretValue": obj({"value": string, "expectedVersion": {"type": "integer", "minimum": 1, "maximum": 9007199254740991}}, ["value"]),
 "AuditEvent": {"type": "object", "description": "See README 'Audit log'"},
}
# Request bodies are decoded with Swift Codable, which reads an explicit null as "absent" for optional fields:
# say so in the schema, so that {"description": null} is not "a schema-violating request that was accepted".
for request_schema in ["ProjectCreate", "IdentityCreate", "IdentitySpec", "AuthMethodSpec", "ClientSecretSpec", "RoleSpec",
                       "PrivilegeSpec", "SecretValue", "RoleGrant", "Permission", "Condition"]:
    sch = schemas[request_schema]
    required = set(sch.get("required", []))
    for key, prop in list(sch["properties"].items()):
        if key not in required:
            sch["properties"][key] = {"anyOf": [prop, {"type": "null"}]}


def param(name, where="path", schema=string, required=True):
    return {"name": name, "in": where, "required": required, "schema": schema}
page = [param("after", "query", string, False), param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}, False)]
def errors(*codes):
    d = {"400": "Bad request", "401": "Unauthenticated", "403": "Permission denied", "404": "Not found", "409": "Conflict", "413": "Body too large", "429": "Locked out", "503": "Storage unavailable"}
    return {c: {"description": d[c], "content": {"application/json": {"schema": S("Error")}}} for c in codes}
def ok(schema, status="200", desc="OK"):
    return {status: {"description": desc, "content": {"application/json": {"schema": schema}}}}
def body(schema):
    return {"required": True, "content": {"application/json": {"schema": schema}}}
def wrap(key, schema): return obj({key: schema}, [key])
def arr(schema): return {"type": "array", "items": schema}
std = ("400", "401", "403", "404", "503")
nocontent = {"204": {"description": "Done"}}
P = {}
def op(method, path, summary, tag, responses, params=(), req=None, security=True):
    o = {"summary": summary, "tags": [tag], "operationId": (method + path).replace("/", "_").replace("{", "").replace("}", "").replace("-", "_").replace(".", "_"), "responses": responses}
    if params: o["parameters"] = list(params)
    if req: o["requestBody"] = req
    if not security: o["security"] = []
    P.setdefault(path, {})[method] = o
text = {"200": {"description": "OK", "content": {"text/plain": {"schema": string}}}}
op("get", "/healthz", "Liveness", "operations", text, security=False)
op("get", "/readyz", "Readiness (503 with the reason when not ready)", "operations", {**text, "503": {"description": "Not ready", "content": {"text/plain": {"schema": string}}}}, security=False)
op("get", "/api/v1/whoami", "The caller as the engine resolves it", "auth", {**ok(strmap), **errors("401")})
op("get", "/api/v1/openapi.json", "This document", "meta", ok({"type": "object"}), security=False)
proj = param("project", schema=slugT)
op("post", "/api/v1/projects", "Create a project", "projects", {**ok(wrap("project", S("Project")), "201", "Created"), **errors("400", "401", "403", "409", "413", "503")}, req=body(S("ProjectCreate")))
op("get", "/api/v1/projects", "List the projects the caller can read", "projects", {**ok(obj({"projects": arr(S("Project")), "next": {"type": ["string", "null"]}}, ["projects"])), **errors("400", "401", "503")}, page)
op("get", "/api/v1/projects/{project}", "Get a project", "projects", {**ok(wrap("project", S("Project"))), **errors(*std)}, [proj])
op("delete", "/api/v1/projects/{project}", "Delete a project and everything in it", "projects", {**nocontent, **errors(*std)}, [proj])
name = param("name", schema=nameT)
op("get", "/api/v1/projects/{project}/secrets", "List secrets", "secrets", {**ok(obj({"secrets": arr(S("SecretMetadata")), "next": {"type": ["string", "null"]}}, ["secrets"])), **errors(*std)}, [proj] + page)
sec = obj({"secret": S("SecretMetadata"), "value": string}, ["secret"])
op("post", "/api/v1/projects/{project}/secrets/{name}", "Create a secret", "secrets", {**ok(sec, "201", "Created"), **errors("400", "401", "403", "404", "409", "413", "503")}, [proj, name], body(S("SecretValue")))
op("put", "/api/v1/projects/{project}/secrets/{name}", "Replace a secret's value", "secrets", {**ok(sec), **errors("400", "401", "403", "404", "409", "413", "503")}, [proj, name], body(S("SecretValue")))
op("get", "/api/v1/projects/{project}/secrets/{name}", "Read a secret (audited)", "secrets", {**ok(sec), **errors(*std)}, [proj, name])
op("delete", "/api/v1/projects/{project}/secrets/{name}", "Delete a secret", "secrets", {**nocontent, **errors(*std)}, [proj, name])
op("get", "/api/v1/audit/events", "Audit events after a sequence number", "audit", {**ok(obj({"events": arr(obj({"sequence": integer, "hash": string, "event": S("AuditEvent")}))}, ["events"])), **errors("400", "401", "403", "503")}, [param("after", "query", {"type": "integer", "minimum": 0}, False), param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}, False)])
iid = param("identityId", schema=idT)
op("post", "/api/v1/identities", "Create a machine identity", "identities", {**ok(wrap("identity", S("Identity")), "201", "Created"), **errors("400", "401", "403", "409", "413", "503")}, req=body(S("IdentityCreate")))
op("get", "/api/v1/identities", "List identities", "identities", {**ok(obj({"identities": arr(S("Identity")), "next": {"type": ["string", "null"]}}, ["identities"])), **errors("400", "401", "403", "503")}, page)
op("get", "/api/v1/identities/{identityId}", "Get an identity", "identities", {**ok(wrap("identity", S("Identity"))), **errors(*std)}, [iid])
op("patch", "/api/v1/identities/{identityId}", "Change an identity's name, org role or metadata", "identities", {**ok(wrap("identity", S("Identity"))), **errors(*std, "409", "413")}, [iid], body(S("IdentitySpec")))
op("delete", "/api/v1/identities/{identityId}", "Delete an identity with its auth methods, tokens and grants", "identities", {**nocontent, **errors(*std)}, [iid])
op("post", "/api/v1/auth/universal-auth/identities/{identityId}", "Attach Universal Auth", "universal-auth", {**ok(wrap("identityUniversalAuth", S("UniversalAuth")), "201", "Created"), **errors(*std, "409", "413")}, [iid], body(S("AuthMethodSpec")))
op("get", "/api/v1/auth/universal-auth/identities/{identityId}", "Get Universal Auth configuration", "universal-auth", {**ok(wrap("identityUniversalAuth", S("UniversalAuth"))), **errors(*std)}, [iid])
op("post", "/api/v1/auth/universal-auth/identities/{identityId}/client-secrets", "Create a client secret (shown once)", "universal-auth", {**ok(obj({"clientSecret": string, "clientSecretData": S("ClientSecret")}, ["clientSecret", "clientSecretData"]), "201", "Created"), **errors(*std, "409", "413")}, [iid], body(S("ClientSecretSpec")))
op("get", "/api/v1/auth/universal-auth/identities/{identityId}/client-secrets", "List client secrets (no values)", "universal-auth", {**ok(obj({"clientSecretData": arr(S("ClientSecret")), "next": {"type": ["string", "null"]}}, ["clientSecretData"])), **errors(*std)}, [iid] + page)
op("post", "/api/v1/auth/universal-auth/identities/{identityId}/client-secrets/{clientSecretId}/revoke", "Revoke a client secret", "universal-auth", {**ok(wrap("clientSecretData", S("ClientSecret"))), **errors(*std)}, [iid, param("clientSecretId", schema=idT)])
op("post", "/api/v1/auth/universal-auth/login", "Exchange client ID and secret for an access token", "universal-auth", {**ok(S("AccessToken")), **errors("400", "401", "413", "429", "503")}, req=body(obj({"clientId": string, "clientSecret": string}, ["clientId", "clientSecret"])), security=False)
op("post", "/api/v1/auth/token-auth/identities/{identityId}", "Attach Token Auth", "token-auth", {**ok(wrap("identityTokenAuth", S("TokenAuth")), "201", "Created"), **errors(*std, "409", "413")}, [iid], body(S("AuthMethodSpec")))
op("post", "/api/v1/auth/token-auth/identities/{identityId}/tokens", "Create a token (shown once)", "token-auth", {**ok(S("AccessToken"), "201", "Created"), **errors(*std, "409")}, [iid])
op("post", "/api/v1/auth/tls-cert-auth/identities/{identityId}", "Attach (or replace) TLS Certificate Auth", "tls-cert-auth", {**ok(wrap("identityTlsCertAuth", S("TLSCertAuth")), "201", "Created"), **errors(*std, "413")}, [iid], body(S("AuthMethodSpec")))
op("get", "/api/v1/auth/tls-cert-auth/identities/{identityId}", "Get TLS Certificate Auth configuration", "tls-cert-auth", {**ok(wrap("identityTlsCertAuth", S("TLSCertAuth"))), **errors(*std)}, [iid])
op("post", "/api/v1/auth/tls-cert-auth/login", "Exchange the TLS client certificate for an access token", "tls-cert-auth", {**ok(S("AccessToken")), **errors("400", "401", "413", "503")}, req=body(obj({"identityId": string}, ["identityId"])), security=False)
tok = body(obj({"accessToken": string}, ["accessToken"]))
op("post", "/api/v1/auth/token/renew", "Renew an access token (up to its max TTL)", "tokens", {**ok(S("AccessToken")), **errors("400", "401", "413", "503")}, req=tok, security=False)
op("post", "/api/v1/auth/token/revoke", "Revoke an access token", "tokens", {**ok(obj({"message": string}, ["message"])), **errors("400", "401", "413", "503")}, req=tok, security=False)
slug = param("slug", schema=slugT)
op("post", "/api/v1/projects/{project}/roles", "Create a custom role", "roles", {**ok(wrap("role", S("Role")), "201", "Created"), **errors(*std, "409", "413")}, [proj], body(S("RoleSpec")))
op("get", "/api/v1/projects/{project}/roles", "List built-in and custom roles", "roles", {**ok(obj({"roles": arr(S("Role")), "next": {"type": ["string", "null"]}}, ["roles"])), **errors(*std)}, [proj] + page)
op("get", "/api/v1/projects/{project}/roles/{slug}", "Get a role", "roles", {**ok(wrap("role", S("Role"))), **errors(*std)}, [proj, slug])
op("delete", "/api/v1/projects/{project}/roles/{slug}", "Delete a custom role", "roles", {**nocontent, **errors(*std)}, [proj, slug])
op("get", "/api/v1/projects/{project}/identity-memberships", "List identity memberships", "memberships", {**ok(obj({"identityMemberships": arr(S("Membership")), "next": {"type": ["string", "null"]}}, ["identityMemberships"])), **errors(*std)}, [proj] + page)
op("put", "/api/v1/projects/{project}/identity-memberships/{identityId}", "Set an identity's roles in the project (roles may be temporary)", "memberships", {**ok(wrap("identityMembership", S("Membership"))), **errors(*std, "413")}, [proj, iid], body(obj({"roles": arr(S("RoleGrant"))}, ["roles"])))
op("delete", "/api/v1/projects/{project}/identity-memberships/{identityId}", "Remove an identity from the project", "memberships", {**nocontent, **errors(*std)}, [proj, iid])
op("post", "/api/v1/projects/{project}/identity-privileges", "Grant an additional (optionally temporary) privilege", "privileges", {**ok(wrap("privilege", S("Privilege")), "201", "Created"), **errors(*std, "409", "413")}, [proj], body(S("PrivilegeSpec")))
op("get", "/api/v1/projects/{project}/identity-privileges", "List additional privileges", "privileges", {**ok(obj({"privileges": arr(S("Privilege")), "next": {"type": ["string", "null"]}}, ["privileges"])), **errors(*std)}, [proj] + page)
op("delete", "/api/v1/projects/{project}/identity-privileges/{privilegeId}", "Delete an additional privilege", "privileges", {**nocontent, **errors(*std)}, [proj, param("privilegeId", schema=idT)])
doc = {"openapi": "3.1.0",
 "info": {"title": "Gatehouse admin API", "version": "1", "description": "Projects, machine identities, authentication methods, roles and grants. Authenticate with the admin client certificate (mTLS) or 'Authorization: Bearer <access token>'. Errors are {\"error\": {\"code\", \"message\"}} with a stable code."},
 "servers": [{"url": "https://localhost:8443"}],
 "security": [{"mutualTLS": []}, {"bearer": []}],
 "components": {"securitySchemes": {"mutualTLS": {"type": "mutualTLS"}, "bearer": {"type": "http", "scheme": "bearer"}}, "schemas": schemas},
 "paths": P}
text = json.dumps(doc, indent=1, sort_keys=True)
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(root, "Sources/HTTPFrontEnd/OpenAPIDocument.swift"), "w") as f:
    f.write("/// The admin API's OpenAPI 3.1 document, served at `/api/v1/openapi.json` and printed by `gatehouse openapi`.\n")
    f.write("/// Generated by `python3 docs/openapi.py` (edit that, not this); `OpenAPIConsistencyTests` checks that its\n")
    f.write("/// operations and the router's routes are the same set.\n")
    f.write("public enum OpenAPIDocument {\n    public static let json = #\"\"\"\n")
    for line in text.split("\n"):
        f.write("    " + line + "\n")
    f.write("    \"\"\"#\n}\n")
