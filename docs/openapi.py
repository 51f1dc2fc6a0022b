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
keyAlgs = {"enum": ["RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "ED25519"]}
durT = {"type": "string", "pattern": "^[1-9][0-9]{0,6}[smhd]$", "description": "e.g. 90d, 8760h"}
reasons = {"enum": ["unspecified", "keyCompromise", "caCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "certificateHold", "removeFromCRL", "privilegeWithdrawn", "aaCompromise"]}
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
 "Permission": obj({"subject": {"enum": ["project", "secrets", "roles", "members", "kms-keys", "certificate-authorities", "certificate-templates", "certificate-profiles", "certificates", "pki-alerts", "ssh-certificate-authorities", "ssh-certificates", "ssh-hosts", "pam-resources", "pam-accounts", "pam-access", "pam-sessions", "*"]}, "actions": {"type": "array", "minItems": 1, "items": {"enum": ["read", "create", "edit", "delete", "encrypt", "decrypt", "mac", "sign", "verify", "revoke", "export", "request", "approve", "auto-approve", "*"]}}, "conditions": {"type": "object", "propertyNames": {"enum": ["name", "path", "account"]}, "additionalProperties": S("Condition")}, "inverted": boolean}, ["subject", "actions"]),
 "Role": obj({"slug": string, "project": string, "description": string, "permissions": {"type": "array", "items": S("Permission")}, "isBuiltIn": boolean}, ["slug", "project", "permissions", "isBuiltIn"]),
 "RoleSpec": obj({"slug": slugT, "description": string, "permissions": {"type": "array", "minItems": 1, "maxItems": 200, "items": S("Permission")}}, ["slug", "permissions"]),
 "RoleGrant": obj({"role": string, "isTemporary": boolean, "temporaryRange": {"type": "string", "pattern": "^[1-9][0-9]{0,6}[smhd]$", "description": "e.g. 30s, 1m, 2h, 3d"}, "temporaryAccessStartTime": date, "temporaryAccessEndTime": date}, ["role"]),
 "Membership": obj({"project": string, "identityId": string, "roles": {"type": "array", "items": S("RoleGrant")}}, ["project", "identityId", "roles"]),
 "PrivilegeSpec": obj({"identityId": string, "slug": slugT, "permissions": {"type": "array", "minItems": 1, "maxItems": 200, "items": S("Permission")}, "isTemporary": boolean, "temporaryRange": {"type": "string", "pattern": "^[1-9][0-9]{0,6}[smhd]$"}, "temporaryAccessStartTime": date}, ["identityId", "slug", "permissions"]),
 "Privilege": obj({"id": string, "project": string, "identityId": string, "slug": string, "permissions": {"type": "array", "items": S("Permission")}, "isTemporary": boolean, "temporaryRange": string, "temporaryAccessStartTime": date, "temporaryAccessEndTime": date}, ["id", "project", "identityId", "slug", "permissions", "isTemporary"]),
 "SecretMetadata": obj({"id": string, "project": string, "name": string, "version": integer, "createdAt": date, "updatedAt": date}, ["id", "project", "name", "version"]),
 "SecretValue": obj({"value": string, "expectedVersion": {"type": "integer", "minimum": 1, "maximum": 9007199254740991}}, ["value"]),
 "AuditEvent": {"type": "object", "description": "See README 'Audit log'"},
 "CASubject": obj({"commonName": {"type": "string", "minLength": 1, "maxLength": 64}, "organization": {"type": "string", "maxLength": 64}, "organizationalUnit": {"type": "string", "maxLength": 64}, "country": {"type": "string", "pattern": "^[A-Za-z]{2}$"}, "province": {"type": "string", "maxLength": 64}, "locality": {"type": "string", "maxLength": 64}}, ["commonName"]),
 "CASpec": obj({"type": {"enum": ["root", "intermediate"]}, "subject": S("CASubject"), "keyAlgorithm": keyAlgs, "notAfter": date, "maxPathLength": {"type": "integer", "minimum": -1, "maximum": 100}, "parentCaId": idT}, ["type", "subject"]),
 "CA": obj({"id": string, "project": string, "type": {"enum": ["root", "intermediate"]}, "status": {"enum": ["active", "pending-certificate", "disabled"]}, "subject": S("CASubject"), "dn": string, "keyAlgorithm": keyAlgs, "maxPathLength": {"type": "integer"}, "parentCaId": string, "serialNumber": string, "notBefore": date, "notAfter": date, "certificate": string, "certificateChain": strs, "createdAt": date}, ["id", "project", "type", "status", "subject", "dn", "keyAlgorithm", "maxPathLength", "certificateChain", "createdAt"]),
 "PatternRule": obj({"type": {"type": "string", "maxLength": 32}, "allowed": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 253}}, "denied": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 253}}, "required": boolean}, ["type"]),
 "TemplateSpec": obj({"name": nameT, "description": {"type": "string", "maxLength": 1000}, "subject": {"type": "array", "maxItems": 20, "items": S("PatternRule")}, "sans": {"type": "array", "maxItems": 20, "items": S("PatternRule")}, "keyAlgorithms": {"type": "array", "items": keyAlgs}, "signatureAlgorithms": {"type": "array", "items": {"enum": ["SHA256-ECDSA", "SHA384-ECDSA", "SHA512-ECDSA", "SHA256-RSA", "SHA384-RSA", "SHA512-RSA", "ED25519"]}}, "keyUsages": {"type": "array", "items": {"enum": ["digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"]}}, "extendedKeyUsages": {"type": "array", "items": {"enum": ["serverAuth", "clientAuth", "codeSigning", "emailProtection", "timeStamping", "ocspSigning"]}}, "maxTTL": durT}, ["name"]),
 "Template": obj({"id": string, "project": string, "spec": S("TemplateSpec"), "createdAt": date}, ["id", "project", "spec", "createdAt"]),
 "ESTSettings": obj({"passphrase": {"type": "string", "minLength": 8, "maxLength": 256, "writeOnly": True}, "bootstrapCAChain": {"type": "string", "description": "PEM certificates"}, "disableBootstrapValidation": boolean, "requireChannelBinding": boolean}),
 "ProfileSpec": obj({"slug": nameT, "description": {"type": "string", "maxLength": 1000}, "caId": idT, "templateId": idT, "enrollment": {"enum": ["api", "est", "acme", "kmip"]}, "est": S("ESTSettings"), "defaultTTL": durT}, ["slug", "templateId", "enrollment"]),
 "Profile": obj({"id": string, "slug": string, "project": string, "description": string, "caId": string, "templateId": string, "enrollment": {"enum": ["api", "est", "acme", "kmip"]}, "estHasPassphrase": boolean, "estBootstrapCAChain": string, "estDisableBootstrapValidation": boolean, "estRequireChannelBinding": boolean, "defaultTTL": string, "createdAt": date}, ["id", "slug", "project", "templateId", "enrollment", "estHasPassphrase", "estDisableBootstrapValidation", "estRequireChannelBinding", "createdAt"]),
 "IssuanceRequest": obj({"csr": {"type": "string", "maxLength": 65536, "description": "PEM or base64 DER PKCS#10"}, "commonName": {"type": "string", "maxLength": 64}, "altNames": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 1024}}, "ttl": durT, "keyAlgorithm": keyAlgs, "signatureAlgorithm": string}),
 "AlertFilter": obj({"field": {"enum": ["commonName", "subject", "altName", "profile", "caId", "serialNumber"]}, "operator": {"enum": ["equals", "notEquals", "contains", "startsWith", "endsWith", "glob"]}, "value": {"type": "string", "maxLength": 256}}, ["field", "operator", "value"]),
 "AlertSpec": obj({"name": nameT, "alertBefore": durT, "filters": {"type": "array", "maxItems": 20, "items": S("AlertFilter")}, "recipients": {"type": "array", "minItems": 1, "maxItems": 20, "items": {"type": "string", "format": "uri", "pattern": "^https?://[^/?#]+", "maxLength": 2048}}}, ["name", "alertBefore", "recipients"]),
 "Alert": obj({"id": string, "project": string, "spec": S("AlertSpec"), "createdAt": date}, ["id", "project", "spec", "createdAt"]),
 "Certificate": obj({"serialNumber": string, "project": string, "caId": string, "profileId": string, "commonName": string, "subject": string, "altNames": strs, "notBefore": date, "notAfter": date, "status": {"enum": ["active", "revoked", "expired"]}, "revokedAt": date, "revocationReason": reasons, "certificate": string, "certificateChain": strs, "hasPrivateKey": boolean}, ["serialNumber", "project", "commonName", "subject", "altNames", "notBefore", "notAfter", "status", "certificate", "certificateChain", "hasPrivateKey"]),
}
# Request bodies are decoded with Swift Codable, which reads an explicit null as "absent" for optional fields:
# say so in the schema, so that {"description": null} is not "a schema-violating request that was accepted".
for request_schema in ["ProjectCreate", "IdentityCreate", "IdentitySpec", "AuthMethodSpec", "ClientSecretSpec", "RoleSpec",
                       "PrivilegeSpec", "SecretValue", "RoleGrant", "Permission", "Condition", "CASubject", "CASpec",
                       "PatternRule", "TemplateSpec", "ESTSettings", "ProfileSpec", "IssuanceRequest", "AlertSpec"]:
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
sshAlgs = {"enum": ["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-3072", "rsa-4096"]}
sshKey = {"type": "string", "maxLength": 16384, "description": "authorized_keys format: 'ssh-ed25519 AAAA… [comment]'"}
principal = {"type": "string", "pattern": "^[!-+--~]{1,255}$"}
mapping = obj({"login": {"type": "string", "pattern": "^[!-+--.0-~]{1,32}$"}, "allowedIdentities": {"type": "array", "minItems": 1, "maxItems": 1000, "items": nameT}}, ["login", "allowedIdentities"])
mappings = {"type": "array", "maxItems": 100, "items": S("SSHLoginMapping")}
hostnameT = {"type": "string", "pattern": "^[A-Za-z0-9:][A-Za-z0-9.:-]{0,252}$"}
schemas.update({
 "SSHCASpec": obj({"name": nameT, "keyAlgorithm": sshAlgs, "userTTL": durT, "maxUserTTL": durT, "hostTTL": durT, "maxHostTTL": durT}, ["name"]),
 "SSHCA": obj({"id": string, "project": string, "name": string, "keyAlgorithm": sshAlgs, "publicKey": string, "fingerprint": string, "userTTL": string, "maxUserTTL": string, "hostTTL": string, "maxHostTTL": string, "createdAt": date}, ["id", "project", "name", "keyAlgorithm", "publicKey", "fingerprint", "userTTL", "maxUserTTL", "hostTTL", "maxHostTTL", "createdAt"]),
 "SSHCertificateRequest": obj({"type": {"enum": ["user", "host"]}, "publicKey": sshKey, "keyId": {"type": "string", "maxLength": 256}, "principals": {"type": "array", "minItems": 1, "maxItems": 256, "items": principal}, "ttl": durT, "criticalOptions": {"type": "object", "propertyNames": {"enum": ["force-command", "source-address", "verify-required"]}, "additionalProperties": {"type": "string", "maxLength": 4096}}, "extensions": {"type": "array", "items": {"enum": ["permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty", "permit-user-rc", "no-touch-required"]}}}, ["type", "publicKey", "principals"]),
 "SSHCertificate": obj({"serial": string, "caId": string, "project": string, "type": {"enum": ["user", "host"]}, "keyId": string, "principals": strs, "validAfter": date, "validBefore": date, "criticalOptions": strmap, "extensions": strs, "publicKeyFingerprint": string, "certificate": string, "status": {"enum": ["active", "revoked", "expired"]}, "revokedAt": date, "issuedTo": string}, ["serial", "caId", "project", "type", "keyId", "principals", "validAfter", "validBefore", "criticalOptions", "extensions", "publicKeyFingerprint", "certificate", "status", "issuedTo"]),
 "SSHLoginMapping": mapping,
 "SSHHostGroupSpec": obj({"name": nameT, "loginMappings": mappings}, ["name"]),
 "SSHHostGroup": obj({"id": string, "project": string, "name": string, "loginMappings": arr(S("SSHLoginMapping")), "createdAt": date}, ["id", "project", "name", "loginMappings", "createdAt"]),
 "SSHHostSpec": obj({"hostname": hostnameT, "port": {"type": "integer", "minimum": 1, "maximum": 65535}, "hostGroup": nameT, "userCaId": idT, "hostCaId": idT, "loginMappings": mappings, "hostPublicKey": sshKey, "hostCertificateTTL": durT}, ["hostname", "userCaId", "hostCaId"]),
 "SSHHost": obj({"id": string, "project": string, "hostname": string, "port": {"type": "integer"}, "hostGroupId": string, "userCaId": string, "hostCaId": string, "loginMappings": arr(S("SSHLoginMapping")), "userCAPublicKey": string, "hostCAPublicKey": string, "hostCertificate": string, "createdAt": date}, ["id", "project", "hostname", "port", "userCaId", "hostCaId", "loginMappings", "userCAPublicKey", "hostCAPublicKey", "createdAt"]),
 "SSHConnectGrant": obj({"certificate": S("SSHCertificate"), "hostname": string, "port": {"type": "integer"}, "login": string, "knownHostsLine": string}, ["certificate", "hostname", "port", "login", "knownHostsLine"]),
})
std = ("400", "401", "403", "404", "503")
nocontent = {"204": {"description": "Done"}}
P = {}
def op(method, path, summary, tag, responses, params=(), req=None, security=True):
    # Every route of the HTTPS listener may answer 429: a client address whose failed authentications emptied its
    # token bucket (listeners.https.failure_burst / failures_per_minute) is refused up front, with Retry-After.
    responses = dict(responses)
    responses.setdefault("429", {"description": "Too many failed authentications from this address (Retry-After says when to retry)",
                                 "content": {"application/json": {"schema": S("Error")}}})
    # And 431 (RFC 6585), with no body and a closed connection: a request line and header fields over the listener's
    # head limit (a query string of a few kilobytes) never reach the route.
    responses.setdefault("431", {"description": "Request line and header fields over the listener's limit (the connection is closed)"})
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
op("get", "/api/v1/audit/events", "The audit log: without search parameters every event in arrival order (read on from `next`, which is always set); with type, actor, project, since, until or order a search in time order through indexes (pages follow `next`)", "audit", {**ok(obj({"events": arr(obj({"chain": string, "sequence": integer, "hash": string, "event": S("AuditEvent")}, ["chain", "sequence", "hash", "event"])), "next": string}, ["events"])), **errors("400", "401", "403", "503")}, [
    param("cursor", "query", {"type": "string", "maxLength": 65536}, False), param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}, False),
    param("type", "query", {"type": "string", "maxLength": 200}, False), param("actor", "query", {"type": "string", "maxLength": 200}, False),
    param("project", "query", {"type": "string", "maxLength": 200}, False),
    param("since", "query", {"type": "string", "format": "date-time", "description": "at or after"}, False),
    param("until", "query", {"type": "string", "format": "date-time", "description": "before"}, False),
    param("order", "query", {"enum": ["asc", "desc"]}, False)])
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
def lst(key, schema): return obj({key: arr(schema), "next": {"type": ["string", "null"]}}, [key])
caid = param("caId", schema=idT)
kmipPKI = obj({"keyAlgorithm": keyAlgs, "caCertificate": string, "serialNumber": string, "notBefore": date, "notAfter": date, "createdAt": date}, ["keyAlgorithm", "caCertificate", "serialNumber", "notBefore", "notAfter", "createdAt"])
op("get", "/api/v1/kmip/pki", "The organization's KMIP client PKI (the CA KMIP client certificates come from)", "kmip", {**ok(wrap("pki", kmipPKI)), **errors(*std)})
op("post", "/api/v1/kmip/pki", "Set up the KMIP client PKI with a chosen CA key algorithm", "kmip", {**ok(wrap("pki", kmipPKI), "201", "Created"), **errors(*std, "409", "413")}, req=body(obj({"keyAlgorithm": keyAlgs})))
op("post", "/api/v1/kmip/client-certificates", "Issue a KMIP client certificate over the client's public key (sets the PKI up on demand)", "kmip", {**ok(wrap("certificate", obj({"certificate": string, "certificateChain": strs, "serialNumber": string, "notAfter": date}, ["certificate", "certificateChain", "serialNumber", "notAfter"])), "201", "Created"), **errors(*std, "409", "413")}, req=body(obj({"commonName": nameT, "publicKey": {"type": "string", "maxLength": 65536, "description": "PEM SubjectPublicKeyInfo"}, "ttl": durT, "caKeyAlgorithm": keyAlgs}, ["commonName", "publicKey"])))
op("post", "/api/v1/projects/{project}/pki/cas", "Create a root or intermediate CA", "pki", {**ok(wrap("ca", S("CA")), "201", "Created"), **errors(*std, "409", "413")}, [proj], body(S("CASpec")))
op("get", "/api/v1/projects/{project}/pki/cas", "List CAs", "pki", {**ok(lst("cas", S("CA"))), **errors(*std)}, [proj] + page)
op("get", "/api/v1/pki/cas/{caId}", "Get a CA", "pki", {**ok(wrap("ca", S("CA"))), **errors(*std)}, [caid])
op("get", "/api/v1/pki/cas/{caId}/csr", "The CSR of an intermediate awaiting an external CA's certificate", "pki", {**ok(wrap("csr", string)), **errors(*std, "409")}, [caid])
op("post", "/api/v1/pki/cas/{caId}/import-certificate", "Install an externally issued CA certificate and its chain", "pki", {**ok(wrap("ca", S("CA"))), **errors(*std, "409", "413")}, [caid], body(obj({"certificate": string, "certificateChain": string}, ["certificate", "certificateChain"])))
op("post", "/api/v1/pki/cas/{caId}/renew", "Re-issue the CA certificate (same key) with a new end of validity", "pki", {**ok(wrap("ca", S("CA"))), **errors(*std, "409", "413")}, [caid], body(obj({"notAfter": date}, ["notAfter"])))
tid = param("templateId", schema=idT)
op("post", "/api/v1/projects/{project}/pki/templates", "Create a certificate template (policy)", "pki", {**ok(wrap("template", S("Template")), "201", "Created"), **errors(*std, "409", "413")}, [proj], body(S("TemplateSpec")))
op("get", "/api/v1/projects/{project}/pki/templates", "List templates", "pki", {**ok(lst("templates", S("Template"))), **errors(*std)}, [proj] + page)
op("get", "/api/v1/pki/templates/{templateId}", "Get a template", "pki", {**ok(wrap("template", S("Template"))), **errors(*std)}, [tid])
op("delete", "/api/v1/pki/templates/{templateId}", "Delete a template no profile uses", "pki", {**nocontent, **errors(*std, "409")}, [tid])
pid = param("profileId", schema={"type": "string", "pattern": "^[A-Za-z0-9._-]{1,200}$", "description": "id or slug"})
op("post", "/api/v1/projects/{project}/pki/profiles", "Create a certificate profile (issuer, template, enrollment method)", "pki", {**ok(wrap("profile", S("Profile")), "201", "Created"), **errors(*std, "409", "413")}, [proj], body(S("ProfileSpec")))
op("get", "/api/v1/projects/{project}/pki/profiles", "List profiles", "pki", {**ok(lst("profiles", S("Profile"))), **errors(*std)}, [proj] + page)
op("get", "/api/v1/pki/profiles/{profileId}", "Get a profile", "pki", {**ok(wrap("profile", S("Profile"))), **errors(*std)}, [pid])
op("delete", "/api/v1/pki/profiles/{profileId}", "Delete a profile", "pki", {**nocontent, **errors(*std)}, [pid])
op("post", "/api/v1/pki/profiles/{profileId}/issue", "Issue from a CSR, or CSR-less (the key is returned once)", "pki", {**ok(obj({"certificate": S("Certificate"), "privateKey": string}, ["certificate"]), "201", "Created"), **errors(*std, "409", "413")}, [pid], body(S("IssuanceRequest")))
serial = param("serial", schema={"type": "string", "pattern": "^[0-9a-fA-F:]{1,64}$"})
op("get", "/api/v1/projects/{project}/pki/certificates", "List issued certificates by expiry, soonest first (every filter given must hold; pages follow `next`)", "pki", {**ok(lst("certificates", S("Certificate"))), **errors(*std)}, [proj] + page + [
    param("ca", "query", {"type": "string", "maxLength": 200}, False), param("profile", "query", {"type": "string", "maxLength": 200}, False),
    param("status", "query", {"enum": ["active", "revoked", "expired"]}, False),
    param("name", "query", {"type": "string", "maxLength": 300, "description": "common name or subject alternative name"}, False),
    param("expiresAfter", "query", {"type": "string", "format": "date-time"}, False),
    param("expiresBefore", "query", {"type": "string", "format": "date-time"}, False),
    param("order", "query", {"enum": ["asc", "desc"]}, False)])
op("get", "/api/v1/pki/certificates/{serial}", "Get a certificate", "pki", {**ok(wrap("certificate", S("Certificate"))), **errors(*std)}, [serial])
op("post", "/api/v1/pki/certificates/{serial}/revoke", "Revoke (the CRL is regenerated at once)", "pki", {**ok(wrap("certificate", S("Certificate"))), **errors(*std, "409", "413")}, [serial], body(obj({"reason": {"anyOf": [reasons, {"type": "null"}]}})))
op("get", "/api/v1/pki/certificates/{serial}/bundle", "PEM bundle: certificate, chain and the private key if the server holds it (audited)", "pki", {**ok(obj({"certificate": string, "certificateChain": strs, "privateKey": string}, ["certificate", "certificateChain"])), **errors(*std, "409")}, [serial])
op("post", "/api/v1/pki/certificates/{serial}/pkcs12", "PKCS#12 of the certificate, chain and the key the server holds (audited)", "pki", {"200": {"description": "OK", "content": {"application/x-pkcs12": {"schema": {"type": "string", "format": "binary"}}}}, **errors(*std, "409", "413")}, [serial], body(obj({"password": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^\\u0000]*$"}, "alias": {"anyOf": [{"type": "string", "maxLength": 256, "pattern": "^[^\\u0000]*$"}, {"type": "null"}]}}, ["password"])))
op("post", "/api/v1/projects/{project}/pki/alerts", "Create a certificate expiry alert (webhook + log)", "pki", {**ok(wrap("alert", S("Alert")), "201", "Created"), **errors(*std, "409", "413")}, [proj], body(S("AlertSpec")))
op("get", "/api/v1/projects/{project}/pki/alerts", "List expiry alerts", "pki", {**ok(lst("alerts", S("Alert"))), **errors(*std)}, [proj] + page)
op("delete", "/api/v1/pki/alerts/{alertId}", "Delete an expiry alert", "pki", {**nocontent, **errors(*std)}, [param("alertId", schema=idT)])
op("get", "/api/v1/pki/profiles/{profileId}/acme-eab", "The ACME profile's external account binding key id and HMAC key (audited)", "pki", {**ok(obj({"keyId": string, "hmacKey": string}, ["keyId", "hmacKey"])), **errors(*std, "409")}, [pid])
acmeprob = lambda *codes: {c: {"description": d, "content": {"application/problem+json": {"schema": {"type": "object", "properties": {"type": string, "detail": string, "status": {"type": "integer"}}}}}} for c, d in [("400", "Problem (malformed, badNonce, badCSR, …)"), ("403", "unauthorized, orderNotReady"), ("404", "No such directory"), ("415", "Not application/jose+json"), ("500", "serverInternal")] if c in codes}
jose = {"required": True, "content": {"application/jose+json": {"schema": {"type": "object", "properties": {"protected": string, "payload": string, "signature": string}, "required": ["protected", "payload", "signature"]}}}}
acmejson = lambda status="200": {status: {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}}
for prefix in ["/acme/{profile}", "/api/v1/cert-manager/certificate-profiles/{profile}/acme"]:
    pp = [param("profile", schema=nameT)]
    tag = "acme"
    op("get", prefix + "/directory", "ACME directory (RFC 8555 §7.1.1)", tag, {**acmejson(), **acmeprob("404")}, pp, security=False)
    op("head", prefix + "/new-nonce", "A fresh Replay-Nonce (200)", tag, {"200": {"description": "Replay-Nonce header"}, **acmeprob("404")}, pp, security=False)
    op("get", prefix + "/renewal-info/{certID}", "ACME Renewal Information (RFC 9773): the suggested renewal window", tag, {**acmejson(), **acmeprob("400", "404")}, pp + [param("certID", schema={"type": "string", "pattern": "^[A-Za-z0-9_-]+[.][A-Za-z0-9_-]+$"})], security=False)
    op("get", prefix + "/new-nonce", "A fresh Replay-Nonce (204)", tag, {"204": {"description": "Replay-Nonce header"}, **acmeprob("404")}, pp, security=False)
    for path, summary, extra in [("new-account", "Create or find an account (EAB required)", []), ("account/{id}", "Account: POST-as-GET, update contact, deactivate", [param("id")]),
                                 ("account/{id}/orders", "The account's orders, 50 a page (Link rel=\"next\")", [param("id")]), ("account/{id}/orders/{after}", "The next page of the account's orders", [param("id"), param("after")]), ("new-order", "New order (dns and ip identifiers)", []),
                                 ("order/{id}", "Order (POST-as-GET)", [param("id")]), ("authz/{id}", "Authorization (POST-as-GET)", [param("id")]),
                                 ("chall/{id}", "Respond to a challenge (validation starts)", [param("id")]), ("finalize/{id}", "Finalize with a CSR", [param("id")]),
                                 ("cert/{serial}", "Download the certificate chain (application/pem-certificate-chain)", [param("serial")]),
                                 ("revoke-cert", "Revoke (account key or certificate key)", []), ("key-change", "Roll the account over to a new key (RFC 8555 §7.3.5)", [])]:
        op("post", prefix + "/" + path, summary, tag, {**acmejson(), **acmeprob("400", "403", "404", "415", "500")}, pp + extra, jose, security=False)
der = lambda t: {"200": {"description": "OK", "content": {t: {"schema": {"type": "string", "format": "binary"}}}}}
op("get", "/pki/crl/{file}", "The CA's current CRL (DER), as named in issued certificates", "pki-public", {**der("application/pkix-crl"), **errors("404", "503")}, [param("file", schema={"type": "string", "pattern": "^[A-Za-z0-9-]{1,64}[.]crl$"})], security=False)
op("post", "/pki/ocsp", "OCSP responder (RFC 6960, POST)", "pki-public", der("application/ocsp-response"), req={"required": True, "content": {"application/ocsp-request": {"schema": {"type": "string", "format": "binary"}}}}, security=False)
op("get", "/pki/ocsp/{request}", "OCSP responder (RFC 6960, GET with base64 request)", "pki-public", der("application/ocsp-response"), [param("request", schema={"type": "string", "description": "URL-encoded base64 DER OCSPRequest; anything else gets a malformedRequest response"})], security=False)
pamTLS = {"enum": ["disable", "require", "verify-ca", "verify-full"]}
schemas["PAMTarget"] = obj({"host": string, "port": {"type": "integer"}, "database": string, "tlsMode": pamTLS, "caCertificate": string}, ["host", "port", "database", "tlsMode"])
schemas["PAMResourceSpec"] = obj({"name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,63}$"}, "host": {"type": "string", "pattern": "^[A-Za-z0-9:][A-Za-z0-9.:-]{0,252}$"}, "port": {"type": "integer", "minimum": 1, "maximum": 65535}, "database": {"type": "string", "minLength": 1, "maxLength": 63}, "tlsMode": pamTLS, "caCertificate": {"type": "string", "description": "PEM CA certificate(s) for verify-ca / verify-full"}, "failClosed": boolean, "rotationAccount": {"type": "string", "minLength": 1, "maxLength": 63}, "recordRows": {"type": "integer", "minimum": 0, "maximum": 10000, "description": "result rows recorded per statement (0: none)"}}, ["name", "host", "database"])
schemas["PAMResource"] = obj({"id": string, "project": string, "name": string, "target": S("PAMTarget"), "failClosed": boolean, "rotationAccount": string, "recordRows": {"type": "integer"}, "createdAt": date}, ["id", "project", "name", "target", "failClosed", "createdAt"])
schemas["PAMAccount"] = obj({"id": string, "resourceId": string, "project": string, "username": string, "createdAt": date, "passwordChangedAt": date, "rotationInterval": string, "lastRotationError": string}, ["id", "resourceId", "project", "username", "createdAt", "passwordChangedAt"])
schemas["PAMGrant"] = obj({"id": string, "project": string, "resourceId": string, "resourceName": string, "accountId": string, "username": string, "granteeId": string, "granteeName": string, "reason": string, "duration": string, "status": {"enum": ["pending", "approved", "rejected", "revoked", "expired"]}, "requestedAt": date, "decidedAt": date, "decidedBy": string, "expiresAt": date}, ["id", "project", "resourceId", "resourceName", "accountId", "username", "granteeId", "granteeName", "reason", "duration", "status", "requestedAt"])
schemas["PAMSession"] = obj({"id": string, "project": string, "grantId": string, "resourceName": string, "username": string, "granteeId": string, "granteeName": string, "clientAddress": string, "startedAt": date, "endedAt": date, "endReason": string, "stats": obj({"statements": integer, "bytesFromClient": integer, "bytesFromServer": integer}), "legalHold": obj({"by": string, "at": date, "reason": string}, ["by", "at", "reason"]), "recordingDeletedAt": date, "recordingDeletion": string}, ["id", "project", "grantId", "resourceName", "username", "granteeId", "granteeName", "startedAt"])
retentionT = {"type": ["string", "null"], "pattern": "^([1-9][0-9]{0,6}[smhd]|none|)$", "description": "How long a recording is kept after its session ends (e.g. 365d); null keeps recordings"}
schemas["PAMSettings"] = obj({"project": string, "recordingRetention": retentionT, "updatedAt": date}, ["project"])
pamres = param("resourceId", schema=idT)
pamacct = param("accountId", schema=idT)
pamgrant = param("grantId", schema=idT)
op("post", "/api/v1/projects/{project}/pam/resources", "Add a PostgreSQL resource (runs a connection test)", "pam", {**ok(wrap("resource", S("PAMResource")), "201", "Created"), **errors(*std, "409", "413")}, [proj], body(S("PAMResourceSpec")))
op("get", "/api/v1/projects/{project}/pam/resources", "List PostgreSQL resources", "pam", {**ok(lst("resources", S("PAMResource"))), **errors(*std)}, [proj] + page)
op("get", "/api/v1/pam/resources/{resourceId}", "Get a resource", "pam", {**ok(wrap("resource", S("PAMResource"))), **errors(*std)}, [pamres])
op("delete", "/api/v1/pam/resources/{resourceId}", "Delete a resource without accounts", "pam", {**nocontent, **errors(*std, "409")}, [pamres])
op("post", "/api/v1/pam/resources/{resourceId}/accounts", "Add an account (validated by a real login; the password is sealed and never returned)", "pam", {**ok(wrap("account", S("PAMAccount")), "201", "Created"), **errors(*std, "409", "413")}, [pamres], body(obj({"username": {"type": "string", "minLength": 1, "maxLength": 63}, "password": {"type": "string", "minLength": 1, "maxLength": 1024}, "rotationInterval": durT}, ["username", "password"])))
op("post", "/api/v1/pam/accounts/{accountId}/rotate", "Rotate the password now (ALTER ROLE with a SCRAM verifier, verified by a login before it is stored)", "pam", {**ok(wrap("account", S("PAMAccount"))), **errors(*std, "409")}, [pamacct])
op("get", "/api/v1/pam/resources/{resourceId}/accounts", "List a resource's accounts", "pam", {**ok(lst("accounts", S("PAMAccount"))), **errors(*std)}, [pamres] + page)
op("delete", "/api/v1/pam/accounts/{accountId}", "Delete an account (live sessions on it end)", "pam", {**nocontent, **errors(*std)}, [pamacct])
op("post", "/api/v1/pam/accounts/{accountId}/access-requests", "Request just-in-time access (approved at once with auto-approve)", "pam", {**ok(wrap("grant", S("PAMGrant")), "201", "Created"), **errors(*std, "413")}, [pamacct], body(obj({"duration": durT, "reason": {"type": "string", "minLength": 1, "maxLength": 1000}}, ["duration", "reason"])))
op("get", "/api/v1/projects/{project}/pam/grants", "List access requests and grants, newest request first; with status=approved the grants in force now, latest to expire first (every filter given must hold; pages follow `next`)", "pam", {**ok(lst("grants", S("PAMGrant"))), **errors(*std)}, [proj] + page + [
    param("status", "query", {"enum": ["pending", "approved", "rejected", "revoked", "expired"], "description": "`approved`: in force now; `expired`: approved and ended"}, False),
    param("grantee", "query", {"type": "string", "maxLength": 200, "description": "requested by this identity (name)"}, False),
    param("account", "query", {"type": "string", "maxLength": 200, "description": "database username"}, False)])
op("get", "/api/v1/pam/grants/{grantId}", "Get an access request or grant", "pam", {**ok(wrap("grant", S("PAMGrant"))), **errors(*std)}, [pamgrant])
op("post", "/api/v1/pam/grants/{grantId}/approve", "Approve a pending request (not one's own)", "pam", {**ok(wrap("grant", S("PAMGrant"))), **errors(*std, "409")}, [pamgrant])
op("post", "/api/v1/pam/grants/{grantId}/reject", "Reject a pending request", "pam", {**ok(wrap("grant", S("PAMGrant"))), **errors(*std, "409")}, [pamgrant])
op("post", "/api/v1/pam/grants/{grantId}/revoke", "Revoke an approved grant (live sessions end)", "pam", {**ok(wrap("grant", S("PAMGrant"))), **errors(*std, "409")}, [pamgrant])
schemas["PAMRecordingEvent"] = obj({"t": {"type": "number"}, "kind": string, "text": string, "name": string, "statement": string, "sqlState": string, "parameters": {"type": "array", "items": {"type": ["string", "null"]}}, "parameterTypes": {"type": "array", "items": {"type": "integer"}}, "formats": {"type": "array", "items": {"type": "integer"}}, "rows": {"type": "integer"}, "bytes": {"type": "integer"}, "detail": strmap}, ["t", "kind"])
op("get", "/api/v1/pam/sessions/{sessionId}/recording", "Decrypt and check a session recording (audited); 410 once retention deleted it", "pam", {**ok(obj({"integrity": {"enum": ["complete", "incomplete", "tampered"]}, "integrityDetail": string, "session": S("PAMSession"), "events": {"type": "array", "items": S("PAMRecordingEvent")}}, ["integrity", "session", "events"])), **errors(*std), "410": {"description": "The recording was deleted under the project's retention", "content": {"application/json": {"schema": S("Error")}}}}, [param("sessionId", schema=idT)])
op("put", "/api/v1/pam/sessions/{sessionId}/legal-hold", "Put a session under legal hold: its recording outlives the project's retention (audited)", "pam", {**ok(wrap("session", S("PAMSession"))), **errors(*std, "409")}, [param("sessionId", schema=idT)], body(obj({"reason": {"type": "string", "minLength": 1, "maxLength": 1000, "pattern": "[^ ]"}}, ["reason"])))
op("delete", "/api/v1/pam/sessions/{sessionId}/legal-hold", "Release a session's legal hold (audited)", "pam", {**ok(wrap("session", S("PAMSession"))), **errors(*std)}, [param("sessionId", schema=idT)])
op("get", "/api/v1/projects/{project}/pam/settings", "A project's PAM settings (recording retention)", "pam", {**ok(wrap("settings", S("PAMSettings"))), **errors(*std)}, [proj])
op("put", "/api/v1/projects/{project}/pam/settings", "Set a project's PAM settings (audited)", "pam", {**ok(wrap("settings", S("PAMSettings"))), **errors(*std)}, [proj], body(obj({"recordingRetention": retentionT}, [])))
op("get", "/api/v1/pam/sessions/{sessionId}/recording/verify", "Check a session recording in the store without returning it (audited)", "pam", {**ok(obj({"sessionId": string, "integrity": {"enum": ["complete", "incomplete", "tampered", "missing", "deleted"]}, "integrityDetail": string, "bytes": integer}, ["sessionId", "integrity", "bytes"])), **errors(*std)}, [param("sessionId", schema=idT)])
op("get", "/api/v1/projects/{project}/pam/sessions", "List proxy sessions, newest first (every filter given must hold; pages follow `next`)", "pam", {**ok(lst("sessions", S("PAMSession"))), **errors(*std)}, [proj] + page + [
    param("since", "query", {"type": "string", "format": "date-time", "description": "started at or after"}, False),
    param("until", "query", {"type": "string", "format": "date-time", "description": "started before"}, False),
    param("grantee", "query", {"type": "string", "maxLength": 200}, False), param("resource", "query", {"type": "string", "maxLength": 200}, False),
    param("account", "query", {"type": "string", "maxLength": 200, "description": "database username"}, False),
    param("endReason", "query", {"type": "string", "maxLength": 64, "description": "how the session ended, or `open`"}, False),
    param("order", "query", {"enum": ["asc", "desc"]}, False)])
sshca = param("caId", schema=idT)
sshserial = param("serial", schema={"type": "string", "pattern": "^[0-9]{1,20}$"})
sshhost = param("host", schema={"type": "string", "pattern": "^[A-Za-z0-9:][A-Za-z0-9.:-]{0,252}$", "description": "host id or hostname"})
op("post", "/api/v1/projects/{project}/ssh/cas", "Create an SSH certificate authority (key sealed at rest)", "ssh", {**ok(wrap("ca", S("SSHCA")), "201", "Created"), **errors(*std, "409", "413")}, [proj], body(S("SSHCASpec")))
op("get", "/api/v1/projects/{project}/ssh/cas", "List SSH CAs", "ssh", {**ok(lst("cas", S("SSHCA"))), **errors(*std)}, [proj] + page)
op("get", "/api/v1/ssh/cas/{caId}", "Get an SSH CA", "ssh", {**ok(wrap("ca", S("SSHCA"))), **errors(*std)}, [sshca])
op("post", "/api/v1/ssh/cas/{caId}/issue", "Sign an OpenSSH user or host certificate", "ssh", {**ok(wrap("certificate", S("SSHCertificate")), "201", "Created"), **errors(*std, "409", "413")}, [sshca], body(S("SSHCertificateRequest")))
op("get", "/api/v1/projects/{project}/ssh/certificates", "List issued SSH certificates", "ssh", {**ok(lst("certificates", S("SSHCertificate"))), **errors(*std)}, [proj] + page)
op("get", "/api/v1/ssh/certificates/{serial}", "Get an SSH certificate", "ssh", {**ok(wrap("certificate", S("SSHCertificate"))), **errors(*std)}, [sshserial])
op("post", "/api/v1/ssh/certificates/{serial}/revoke", "Revoke an SSH certificate (it enters the CA's KRL)", "ssh", {**ok(wrap("certificate", S("SSHCertificate"))), **errors(*std, "409")}, [sshserial])
op("post", "/api/v1/projects/{project}/ssh/host-groups", "Create a host group with login mappings", "ssh", {**ok(wrap("hostGroup", S("SSHHostGroup")), "201", "Created"), **errors(*std, "409", "413")}, [proj], body(S("SSHHostGroupSpec")))
op("get", "/api/v1/projects/{project}/ssh/host-groups", "List host groups", "ssh", {**ok(lst("hostGroups", S("SSHHostGroup"))), **errors(*std)}, [proj] + page)
op("post", "/api/v1/projects/{project}/ssh/hosts", "Register a host (and sign its host key)", "ssh", {**ok(wrap("host", S("SSHHost")), "201", "Created"), **errors(*std, "409", "413")}, [proj], body(S("SSHHostSpec")))
op("get", "/api/v1/projects/{project}/ssh/hosts", "List hosts", "ssh", {**ok(lst("hosts", S("SSHHost"))), **errors(*std)}, [proj] + page)
op("get", "/api/v1/ssh/hosts/{host}", "Get a host", "ssh", {**ok(wrap("host", S("SSHHost"))), **errors(*std)}, [sshhost])
op("delete", "/api/v1/ssh/hosts/{host}", "Remove a host", "ssh", {**nocontent, **errors(*std, "409")}, [sshhost])
op("post", "/api/v1/ssh/hosts/{host}/host-certificate", "Sign the host's key (principal: its hostname)", "ssh", {**ok(wrap("certificate", S("SSHCertificate")), "201", "Created"), **errors(*std, "409", "413")}, [sshhost], body(obj({"publicKey": sshKey, "ttl": durT}, ["publicKey"])))
op("post", "/api/v1/ssh/hosts/{host}/connect", "A short-lived user certificate for a login the caller's mappings allow", "ssh", {**ok(S("SSHConnectGrant"), "201", "Created"), **errors(*std, "409", "413")}, [sshhost], body(obj({"publicKey": sshKey, "login": {"type": "string", "maxLength": 32}, "ttl": durT}, ["publicKey"])))
op("get", "/ssh/krl/{file}", "The SSH CA's key revocation list (for sshd RevokedKeys)", "ssh-public", {**der("application/octet-stream"), **errors("404", "503")}, [param("file", schema={"type": "string", "pattern": "^[A-Za-z0-9-]{1,64}[.]krl$"})], security=False)
op("get", "/ssh/ca/{file}", "The SSH CA's public key (for TrustedUserCAKeys / @cert-authority)", "ssh-public", {**text, **errors("404", "503")}, [param("file", schema={"type": "string", "pattern": "^[A-Za-z0-9-]{1,64}[.]pub$"})], security=False)
esttext = lambda *codes: {c: {"description": d, "content": {"text/plain": {"schema": string}}} for c, d in [("400", "Malformed request"), ("401", "Credentials required or refused (WWW-Authenticate)"), ("403", "Policy violation"), ("404", "No such EST profile"), ("409", "Conflict"), ("413", "Body too large"), ("415", "Not application/pkcs10"), ("503", "Unavailable")] if c in codes}
b64 = lambda t: {"200": {"description": "OK (base64, Content-Transfer-Encoding: base64)", "content": {t: {"schema": string}}}}
estreq = {"required": True, "content": {"application/pkcs10": {"schema": {"type": "string", "description": "base64 DER PKCS#10"}}}}
for prefix, params in [("/.well-known/est", []), ("/.well-known/est/{profile}", [param("profile", schema=nameT)])]:
    op("get", prefix + "/cacerts", "EST: the CA certificates (certs-only PKCS#7)", "est", {**b64("application/pkcs7-mime"), **esttext("404", "503")}, params, security=False)
    op("get", prefix + "/csrattrs", "EST: CSR attributes", "est", {**b64("application/csrattrs"), "204": {"description": "None"}, **esttext("404", "503")}, params, security=False)
    op("post", prefix + "/simpleenroll", "EST: enroll (passphrase or bootstrap client certificate)", "est", {**b64("application/pkcs7-mime"), **esttext("400", "401", "403", "404", "409", "413", "415", "503")}, params, estreq, security=False)
    op("post", prefix + "/simplereenroll", "EST: re-enroll with the current certificate as TLS client certificate", "est", {**b64("application/pkcs7-mime"), **esttext("400", "401", "403", "404", "409", "413", "415", "503")}, params, estreq, security=False)
    op("post", prefix + "/serverkeygen", "EST: server-side key generation (multipart: PKCS#8 key and certs-only PKCS#7)", "est", {"200": {"description": "OK", "content": {"multipart/mixed": {"schema": string}}}, **esttext("400", "401", "403", "404", "409", "413", "415", "503")}, params, estreq, security=False)
kmiptext = {c: {"description": d, "content": {"text/plain": {"schema": string}}} for c, d in [("400", "Not one KMIP XML / JSON RequestMessage"), ("401", "No client certificate"), ("413", "Body over 1 MiB"), ("415", "Not TTLV, KMIP XML or KMIP JSON")]}
kmipbody = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}, "text/xml": {"schema": string}, "application/json": {"schema": {"type": "object"}}}
op("post", "/kmip", "KMIP over HTTPS (the MSGENC profiles): a TTLV, KMIP XML or KMIP JSON RequestMessage, answered in the same encoding by the KMIP port's dispatcher (KMIP failures are result statuses inside the answer)", "kmip", {"200": {"description": "The KMIP ResponseMessage", "content": kmipbody}, **kmiptext}, [], {"required": True, "content": kmipbody})
doc = {"openapi": "3.1.0",
 "info": {"title": "Gatehouse admin API", "version": "1", "description": "Projects, machine identities, authentication methods, roles and grants. Authenticate with the admin client certificate (mTLS) or 'Authorization: Bearer <access token>'. Errors are {\"error\": {\"code\", \"message\"}} with a stable code."},
 "servers": [{"url": "https://localhost:8443"}],
 "security": [{"mutualTLS": []}, {"bearer": []}],
 "components": {"securitySchemes": {"mutualTLS": {"type": "mutualTLS"}, "bearer": {"type": "http", "scheme": "bearer"}}, "schemas": schemas},
 "paths": P}
text = json.dumps(doc, indent=1, sort_keys=True)
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(root, "Sources/HTTPFrontEnd/OpenAPIDocument.swift"), "w") as f:
    f.write("// swift-format-ignore-file\n// GENERATED by docs/openapi.py: do not edit.\n\n")
    f.write("/// The admin API's OpenAPI 3.1 document, served at `/api/v1/openapi.json` and printed by `gatehouse openapi`.\n")
    f.write("/// Generated by `python3 docs/openapi.py` (edit that, not this); `OpenAPIConsistencyTests` checks that its\n")
    f.write("/// operations and the router's routes are the same set.\n")
    f.write("public enum OpenAPIDocument {\n    public static let json = #\"\"\"\n")
    for line in text.split("\n"):
        f.write("    " + line + "\n")
    f.write("    \"\"\"#\n}\n")
