/// The admin API's OpenAPI 3.1 document, served at `/api/v1/openapi.json` and printed by `gatehouse openapi`.
/// Maintained by hand with the routes; `OpenAPIConsistencyTests` checks that its operations and the router's routes
/// are the same set.
public enum OpenAPIDocument {
    public static let json = #"""
    {
     "components": {
      "schemas": {
       "AccessToken": {
        "properties": {
         "accessToken": {
          "type": "string"
         },
         "accessTokenMaxTTL": {
          "minimum": 0,
          "type": "integer"
         },
         "expiresIn": {
          "minimum": 0,
          "type": "integer"
         },
         "tokenType": {
          "const": "Bearer"
         }
        },
        "required": [
         "accessToken",
         "expiresIn",
         "accessTokenMaxTTL",
         "tokenType"
        ],
        "type": "object"
       },
       "AccessTokenSettings": {
        "properties": {
         "accessTokenMaxTTL": {
          "minimum": 0,
          "type": "integer"
         },
         "accessTokenNumUsesLimit": {
          "minimum": 0,
          "type": "integer"
         },
         "accessTokenPeriod": {
          "minimum": 0,
          "type": "integer"
         },
         "accessTokenTTL": {
          "minimum": 0,
          "type": "integer"
         },
         "accessTokenTrustedIps": {
          "items": {
           "type": "string"
          },
          "type": "array"
         }
        },
        "type": "object"
       },
       "AuditEvent": {
        "description": "See README 'Audit log'",
        "type": "object"
       },
       "AuthMethodSpec": {
        "properties": {
         "accessTokenMaxTTL": {
          "minimum": 0,
          "type": "integer"
         },
         "accessTokenNumUsesLimit": {
          "minimum": 0,
          "type": "integer"
         },
         "accessTokenPeriod": {
          "minimum": 0,
          "type": "integer"
         },
         "accessTokenTTL": {
          "minimum": 0,
          "type": "integer"
         },
         "accessTokenTrustedIps": {
          "items": {
           "type": "string"
          },
          "type": "array"
         },
         "allowedCommonNames": {
          "items": {
           "type": "string"
          },
          "type": "array"
         },
         "caCertificate": {
          "description": "PEM CA certificate (TLS Certificate Auth)",
          "type": "string"
         },
         "clientSecretTrustedIps": {
          "items": {
           "type": "string"
          },
          "type": "array"
         },
         "lockoutCounterResetSeconds": {
          "minimum": 0,
          "type": "integer"
         },
         "lockoutDurationSeconds": {
          "minimum": 0,
          "type": "integer"
         },
         "lockoutEnabled": {
          "type": "boolean"
         },
         "lockoutThreshold": {
          "minimum": 0,
          "type": "integer"
         }
        },
        "type": "object"
       },
       "ClientSecret": {
        "properties": {
         "createdAt": {
          "format": "date-time",
          "type": "string"
         },
         "description": {
          "type": "string"
         },
         "id": {
          "type": "string"
         },
         "identityId": {
          "type": "string"
         },
         "isRevoked": {
          "type": "boolean"
         },
         "numUses": {
          "minimum": 0,
          "type": "integer"
         },
         "numUsesLimit": {
          "minimum": 0,
          "type": "integer"
         },
         "prefix": {
          "type": "string"
         },
         "ttl": {
          "minimum": 0,
          "type": "integer"
         }
        },
        "required": [
         "id",
         "identityId",
         "prefix",
         "isRevoked"
        ],
        "type": "object"
       },
       "ClientSecretSpec": {
        "properties": {
         "description": {
          "type": "string"
         },
         "numUsesLimit": {
          "minimum": 0,
          "type": "integer"
         },
         "ttl": {
          "minimum": 0,
          "type": "integer"
         }
        },
        "type": "object"
       },
       "Condition": {
        "properties": {
         "$eq": {
          "type": "string"
         },
         "$glob": {
          "type": "string"
         },
         "$in": {
          "items": {
           "type": "string"
          },
          "type": "array"
         },
         "$ne": {
          "type": "string"
         }
        },
        "type": "object"
       },
       "Error": {
        "properties": {
         "error": {
          "properties": {
           "code": {
            "type": "string"
           },
           "message": {
            "type": "string"
           }
          },
          "required": [
           "code",
           "message"
          ],
          "type": "object"
         }
        },
        "required": [
         "error"
        ],
        "type": "object"
       },
       "Identity": {
        "properties": {
         "authMethods": {
          "items": {
           "type": "string"
          },
          "type": "array"
         },
         "createdAt": {
          "format": "date-time",
          "type": "string"
         },
         "id": {
          "type": "string"
         },
         "metadata": {
          "additionalProperties": {
           "type": "string"
          },
          "type": "object"
         },
         "name": {
          "type": "string"
         },
         "orgRole": {
          "enum": [
           "admin",
           "member",
           "no-access"
          ]
         }
        },
        "required": [
         "id",
         "name",
         "orgRole",
         "metadata",
         "authMethods",
         "createdAt"
        ],
        "type": "object"
       },
       "IdentitySpec": {
        "properties": {
         "metadata": {
          "additionalProperties": {
           "type": "string"
          },
          "type": "object"
         },
         "name": {
          "type": "string"
         },
         "orgRole": {
          "enum": [
           "admin",
           "member",
           "no-access"
          ]
         }
        },
        "type": "object"
       },
       "Membership": {
        "properties": {
         "identityId": {
          "type": "string"
         },
         "project": {
          "type": "string"
         },
         "roles": {
          "items": {
           "$ref": "#/components/schemas/RoleGrant"
          },
          "type": "array"
         }
        },
        "required": [
         "project",
         "identityId",
         "roles"
        ],
        "type": "object"
       },
       "Permission": {
        "properties": {
         "actions": {
          "items": {
           "enum": [
            "read",
            "create",
            "edit",
            "delete",
            "*"
           ]
          },
          "type": "array"
         },
         "conditions": {
          "additionalProperties": {
           "$ref": "#/components/schemas/Condition"
          },
          "type": "object"
         },
         "inverted": {
          "type": "boolean"
         },
         "subject": {
          "description": "project, secrets, roles, members, kms-keys or *",
          "type": "string"
         }
        },
        "required": [
         "subject",
         "actions"
        ],
        "type": "object"
       },
       "Privilege": {
        "properties": {
         "id": {
          "type": "string"
         },
         "identityId": {
          "type": "string"
         },
         "isTemporary": {
          "type": "boolean"
         },
         "permissions": {
          "items": {
           "$ref": "#/components/schemas/Permission"
          },
          "type": "array"
         },
         "project": {
          "type": "string"
         },
         "slug": {
          "type": "string"
         },
         "temporaryAccessEndTime": {
          "format": "date-time",
          "type": "string"
         },
         "temporaryAccessStartTime": {
          "format": "date-time",
          "type": "string"
         },
         "temporaryRange": {
          "type": "string"
         }
        },
        "required": [
         "id",
         "project",
         "identityId",
         "slug",
         "permissions",
         "isTemporary"
        ],
        "type": "object"
       },
       "PrivilegeSpec": {
        "properties": {
         "identityId": {
          "type": "string"
         },
         "isTemporary": {
          "type": "boolean"
         },
         "permissions": {
          "items": {
           "$ref": "#/components/schemas/Permission"
          },
          "type": "array"
         },
         "slug": {
          "type": "string"
         },
         "temporaryAccessStartTime": {
          "format": "date-time",
          "type": "string"
         },
         "temporaryRange": {
          "type": "string"
         }
        },
        "required": [
         "identityId",
         "slug",
         "permissions"
        ],
        "type": "object"
       },
       "Project": {
        "properties": {
         "createdAt": {
          "format": "date-time",
          "type": "string"
         },
         "description": {
          "type": "string"
         },
         "slug": {
          "type": "string"
         }
        },
        "required": [
         "slug",
         "description",
         "createdAt"
        ],
        "type": "object"
       },
       "ProjectCreate": {
        "properties": {
         "description": {
          "maxLength": 1000,
          "type": "string"
         },
         "slug": {
          "pattern": "^[a-z0-9_-]{1,64}$",
          "type": "string"
         }
        },
        "required": [
         "slug"
        ],
        "type": "object"
       },
       "Role": {
        "properties": {
         "description": {
          "type": "string"
         },
         "isBuiltIn": {
          "type": "boolean"
         },
         "permissions": {
          "items": {
           "$ref": "#/components/schemas/Permission"
          },
          "type": "array"
         },
         "project": {
          "type": "string"
         },
         "slug": {
          "type": "string"
         }
        },
        "required": [
         "slug",
         "project",
         "permissions",
         "isBuiltIn"
        ],
        "type": "object"
       },
       "RoleGrant": {
        "properties": {
         "isTemporary": {
          "type": "boolean"
         },
         "role": {
          "type": "string"
         },
         "temporaryAccessEndTime": {
          "format": "date-time",
          "type": "string"
         },
         "temporaryAccessStartTime": {
          "format": "date-time",
          "type": "string"
         },
         "temporaryRange": {
          "description": "e.g. 30s, 1m, 2h, 3d",
          "type": "string"
         }
        },
        "required": [
         "role"
        ],
        "type": "object"
       },
       "RoleSpec": {
        "properties": {
         "description": {
          "type": "string"
         },
         "permissions": {
          "items": {
           "$ref": "#/components/schemas/Permission"
          },
          "type": "array"
         },
         "slug": {
          "type": "string"
         }
        },
        "required": [
         "slug",
         "permissions"
        ],
        "type": "object"
       },
       "SecretMetadata": {
        "properties": {
         "createdAt": {
          "format": "date-time",
          "type": "string"
         },
         "id": {
          "type": "string"
         },
         "name": {
          "type": "string"
         },
         "project": {
          "type": "string"
         },
         "updatedAt": {
          "format": "date-time",
          "type": "string"
         },
         "version": {
          "minimum": 0,
          "type": "integer"
         }
        },
        "required": [
         "id",
         "project",
         "name",
         "version"
        ],
        "type": "object"
       },
       "SecretValue": {
        "properties": {
         "expectedVersion": {
          "minimum": 0,
          "type": "integer"
         },
         "value": {
          "type": "string"
         }
        },
        "required": [
         "value"
        ],
        "type": "object"
       },
       "TLSCertAuth": {
        "properties": {
         "allowedCommonNames": {
          "items": {
           "type": "string"
          },
          "type": "array"
         },
         "caCertificate": {
          "type": "string"
         },
         "identityId": {
          "type": "string"
         },
         "token": {
          "$ref": "#/components/schemas/AccessTokenSettings"
         }
        },
        "required": [
         "identityId",
         "caCertificate",
         "allowedCommonNames"
        ],
        "type": "object"
       },
       "TokenAuth": {
        "properties": {
         "identityId": {
          "type": "string"
         },
         "token": {
          "$ref": "#/components/schemas/AccessTokenSettings"
         }
        },
        "required": [
         "identityId",
         "token"
        ],
        "type": "object"
       },
       "UniversalAuth": {
        "properties": {
         "clientId": {
          "type": "string"
         },
         "clientSecretTrustedIps": {
          "items": {
           "type": "string"
          },
          "type": "array"
         },
         "identityId": {
          "type": "string"
         },
         "lockoutCounterResetSeconds": {
          "minimum": 0,
          "type": "integer"
         },
         "lockoutDurationSeconds": {
          "minimum": 0,
          "type": "integer"
         },
         "lockoutEnabled": {
          "type": "boolean"
         },
         "lockoutThreshold": {
          "minimum": 0,
          "type": "integer"
         },
         "token": {
          "$ref": "#/components/schemas/AccessTokenSettings"
         }
        },
        "required": [
         "identityId",
         "clientId",
         "token"
        ],
        "type": "object"
       }
      },
      "securitySchemes": {
       "bearer": {
        "scheme": "bearer",
        "type": "http"
       },
       "mutualTLS": {
        "type": "mutualTLS"
       }
      }
     },
     "info": {
      "description": "Projects, machine identities, authentication methods, roles and grants. Authenticate with the admin client certificate (mTLS) or 'Authorization: Bearer <access token>'. Errors are {\"error\": {\"code\", \"message\"}} with a stable code.",
      "title": "Gatehouse admin API",
      "version": "1"
     },
     "openapi": "3.1.0",
     "paths": {
      "/api/v1/audit/events": {
       "get": {
        "operationId": "get_api_v1_audit_events",
        "parameters": [
         {
          "in": "query",
          "name": "after",
          "required": false,
          "schema": {
           "minimum": 0,
           "type": "integer"
          }
         },
         {
          "in": "query",
          "name": "limit",
          "required": false,
          "schema": {
           "maximum": 1000,
           "minimum": 1,
           "type": "integer"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "events": {
               "items": {
                "properties": {
                 "event": {
                  "$ref": "#/components/schemas/AuditEvent"
                 },
                 "hash": {
                  "type": "string"
                 },
                 "sequence": {
                  "minimum": 0,
                  "type": "integer"
                 }
                },
                "type": "object"
               },
               "type": "array"
              }
             },
             "required": [
              "events"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Audit events after a sequence number",
        "tags": [
         "audit"
        ]
       }
      },
      "/api/v1/auth/tls-cert-auth/identities/{identityId}": {
       "get": {
        "operationId": "get_api_v1_auth_tls_cert_auth_identities_identityId",
        "parameters": [
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "identityTlsCertAuth": {
               "$ref": "#/components/schemas/TLSCertAuth"
              }
             },
             "required": [
              "identityTlsCertAuth"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Get TLS Certificate Auth configuration",
        "tags": [
         "tls-cert-auth"
        ]
       },
       "post": {
        "operationId": "post_api_v1_auth_tls_cert_auth_identities_identityId",
        "parameters": [
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "$ref": "#/components/schemas/AuthMethodSpec"
           }
          }
         },
         "required": true
        },
        "responses": {
         "201": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "identityTlsCertAuth": {
               "$ref": "#/components/schemas/TLSCertAuth"
              }
             },
             "required": [
              "identityTlsCertAuth"
             ],
             "type": "object"
            }
           }
          },
          "description": "Created"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Attach (or replace) TLS Certificate Auth",
        "tags": [
         "tls-cert-auth"
        ]
       }
      },
      "/api/v1/auth/tls-cert-auth/login": {
       "post": {
        "operationId": "post_api_v1_auth_tls_cert_auth_login",
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "properties": {
             "identityId": {
              "type": "string"
             }
            },
            "required": [
             "identityId"
            ],
            "type": "object"
           }
          }
         },
         "required": true
        },
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/AccessToken"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "security": [],
        "summary": "Exchange the TLS client certificate for an access token",
        "tags": [
         "tls-cert-auth"
        ]
       }
      },
      "/api/v1/auth/token-auth/identities/{identityId}": {
       "post": {
        "operationId": "post_api_v1_auth_token_auth_identities_identityId",
        "parameters": [
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "$ref": "#/components/schemas/AuthMethodSpec"
           }
          }
         },
         "required": true
        },
        "responses": {
         "201": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "identityTokenAuth": {
               "$ref": "#/components/schemas/TokenAuth"
              }
             },
             "required": [
              "identityTokenAuth"
             ],
             "type": "object"
            }
           }
          },
          "description": "Created"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "409": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Conflict"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Attach Token Auth",
        "tags": [
         "token-auth"
        ]
       }
      },
      "/api/v1/auth/token-auth/identities/{identityId}/tokens": {
       "post": {
        "operationId": "post_api_v1_auth_token_auth_identities_identityId_tokens",
        "parameters": [
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "201": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/AccessToken"
            }
           }
          },
          "description": "Created"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "409": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Conflict"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Create a token (shown once)",
        "tags": [
         "token-auth"
        ]
       }
      },
      "/api/v1/auth/token/renew": {
       "post": {
        "operationId": "post_api_v1_auth_token_renew",
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "properties": {
             "accessToken": {
              "type": "string"
             }
            },
            "required": [
             "accessToken"
            ],
            "type": "object"
           }
          }
         },
         "required": true
        },
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/AccessToken"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "security": [],
        "summary": "Renew an access token (up to its max TTL)",
        "tags": [
         "tokens"
        ]
       }
      },
      "/api/v1/auth/token/revoke": {
       "post": {
        "operationId": "post_api_v1_auth_token_revoke",
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "properties": {
             "accessToken": {
              "type": "string"
             }
            },
            "required": [
             "accessToken"
            ],
            "type": "object"
           }
          }
         },
         "required": true
        },
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "message": {
               "type": "string"
              }
             },
             "required": [
              "message"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "security": [],
        "summary": "Revoke an access token",
        "tags": [
         "tokens"
        ]
       }
      },
      "/api/v1/auth/universal-auth/identities/{identityId}": {
       "get": {
        "operationId": "get_api_v1_auth_universal_auth_identities_identityId",
        "parameters": [
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "identityUniversalAuth": {
               "$ref": "#/components/schemas/UniversalAuth"
              }
             },
             "required": [
              "identityUniversalAuth"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Get Universal Auth configuration",
        "tags": [
         "universal-auth"
        ]
       },
       "post": {
        "operationId": "post_api_v1_auth_universal_auth_identities_identityId",
        "parameters": [
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "$ref": "#/components/schemas/AuthMethodSpec"
           }
          }
         },
         "required": true
        },
        "responses": {
         "201": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "identityUniversalAuth": {
               "$ref": "#/components/schemas/UniversalAuth"
              }
             },
             "required": [
              "identityUniversalAuth"
             ],
             "type": "object"
            }
           }
          },
          "description": "Created"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "409": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Conflict"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Attach Universal Auth",
        "tags": [
         "universal-auth"
        ]
       }
      },
      "/api/v1/auth/universal-auth/identities/{identityId}/client-secrets": {
       "get": {
        "operationId": "get_api_v1_auth_universal_auth_identities_identityId_client_secrets",
        "parameters": [
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "clientSecretData": {
               "items": {
                "$ref": "#/components/schemas/ClientSecret"
               },
               "type": "array"
              }
             },
             "required": [
              "clientSecretData"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "List client secrets (no values)",
        "tags": [
         "universal-auth"
        ]
       },
       "post": {
        "operationId": "post_api_v1_auth_universal_auth_identities_identityId_client_secrets",
        "parameters": [
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "$ref": "#/components/schemas/ClientSecretSpec"
           }
          }
         },
         "required": true
        },
        "responses": {
         "201": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "clientSecret": {
               "type": "string"
              },
              "clientSecretData": {
               "$ref": "#/components/schemas/ClientSecret"
              }
             },
             "required": [
              "clientSecret",
              "clientSecretData"
             ],
             "type": "object"
            }
           }
          },
          "description": "Created"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "409": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Conflict"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Create a client secret (shown once)",
        "tags": [
         "universal-auth"
        ]
       }
      },
      "/api/v1/auth/universal-auth/identities/{identityId}/client-secrets/{clientSecretId}/revoke": {
       "post": {
        "operationId": "post_api_v1_auth_universal_auth_identities_identityId_client_secrets_clientSecretId_revoke",
        "parameters": [
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "path",
          "name": "clientSecretId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "clientSecretData": {
               "$ref": "#/components/schemas/ClientSecret"
              }
             },
             "required": [
              "clientSecretData"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Revoke a client secret",
        "tags": [
         "universal-auth"
        ]
       }
      },
      "/api/v1/auth/universal-auth/login": {
       "post": {
        "operationId": "post_api_v1_auth_universal_auth_login",
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "properties": {
             "clientId": {
              "type": "string"
             },
             "clientSecret": {
              "type": "string"
             }
            },
            "required": [
             "clientId",
             "clientSecret"
            ],
            "type": "object"
           }
          }
         },
         "required": true
        },
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/AccessToken"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "429": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Locked out"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "security": [],
        "summary": "Exchange client ID and secret for an access token",
        "tags": [
         "universal-auth"
        ]
       }
      },
      "/api/v1/identities": {
       "get": {
        "operationId": "get_api_v1_identities",
        "parameters": [
         {
          "in": "query",
          "name": "after",
          "required": false,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "query",
          "name": "limit",
          "required": false,
          "schema": {
           "maximum": 1000,
           "minimum": 1,
           "type": "integer"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "identities": {
               "items": {
                "$ref": "#/components/schemas/Identity"
               },
               "type": "array"
              },
              "next": {
               "type": [
                "string",
                "null"
               ]
              }
             },
             "required": [
              "identities"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "List identities",
        "tags": [
         "identities"
        ]
       },
       "post": {
        "operationId": "post_api_v1_identities",
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "$ref": "#/components/schemas/IdentitySpec"
           }
          }
         },
         "required": true
        },
        "responses": {
         "201": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "identity": {
               "$ref": "#/components/schemas/Identity"
              }
             },
             "required": [
              "identity"
             ],
             "type": "object"
            }
           }
          },
          "description": "Created"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "409": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Conflict"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Create a machine identity",
        "tags": [
         "identities"
        ]
       }
      },
      "/api/v1/identities/{identityId}": {
       "delete": {
        "operationId": "delete_api_v1_identities_identityId",
        "parameters": [
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "204": {
          "description": "Done"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Delete an identity with its auth methods, tokens and grants",
        "tags": [
         "identities"
        ]
       },
       "get": {
        "operationId": "get_api_v1_identities_identityId",
        "parameters": [
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "identity": {
               "$ref": "#/components/schemas/Identity"
              }
             },
             "required": [
              "identity"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Get an identity",
        "tags": [
         "identities"
        ]
       },
       "patch": {
        "operationId": "patch_api_v1_identities_identityId",
        "parameters": [
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "$ref": "#/components/schemas/IdentitySpec"
           }
          }
         },
         "required": true
        },
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "identity": {
               "$ref": "#/components/schemas/Identity"
              }
             },
             "required": [
              "identity"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "409": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Conflict"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Change an identity's name, org role or metadata",
        "tags": [
         "identities"
        ]
       }
      },
      "/api/v1/openapi.json": {
       "get": {
        "operationId": "get_api_v1_openapi_json",
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "type": "object"
            }
           }
          },
          "description": "OK"
         }
        },
        "security": [],
        "summary": "This document",
        "tags": [
         "meta"
        ]
       }
      },
      "/api/v1/projects": {
       "get": {
        "operationId": "get_api_v1_projects",
        "parameters": [
         {
          "in": "query",
          "name": "after",
          "required": false,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "query",
          "name": "limit",
          "required": false,
          "schema": {
           "maximum": 1000,
           "minimum": 1,
           "type": "integer"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "next": {
               "type": [
                "string",
                "null"
               ]
              },
              "projects": {
               "items": {
                "$ref": "#/components/schemas/Project"
               },
               "type": "array"
              }
             },
             "required": [
              "projects"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "List the projects the caller can read",
        "tags": [
         "projects"
        ]
       },
       "post": {
        "operationId": "post_api_v1_projects",
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "$ref": "#/components/schemas/ProjectCreate"
           }
          }
         },
         "required": true
        },
        "responses": {
         "201": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "project": {
               "$ref": "#/components/schemas/Project"
              }
             },
             "required": [
              "project"
             ],
             "type": "object"
            }
           }
          },
          "description": "Created"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "409": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Conflict"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Create a project",
        "tags": [
         "projects"
        ]
       }
      },
      "/api/v1/projects/{project}": {
       "delete": {
        "operationId": "delete_api_v1_projects_project",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "204": {
          "description": "Done"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Delete a project and everything in it",
        "tags": [
         "projects"
        ]
       },
       "get": {
        "operationId": "get_api_v1_projects_project",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "project": {
               "$ref": "#/components/schemas/Project"
              }
             },
             "required": [
              "project"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Get a project",
        "tags": [
         "projects"
        ]
       }
      },
      "/api/v1/projects/{project}/identity-memberships": {
       "get": {
        "operationId": "get_api_v1_projects_project_identity_memberships",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "identityMemberships": {
               "items": {
                "$ref": "#/components/schemas/Membership"
               },
               "type": "array"
              }
             },
             "required": [
              "identityMemberships"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "List identity memberships",
        "tags": [
         "memberships"
        ]
       }
      },
      "/api/v1/projects/{project}/identity-memberships/{identityId}": {
       "delete": {
        "operationId": "delete_api_v1_projects_project_identity_memberships_identityId",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "204": {
          "description": "Done"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Remove an identity from the project",
        "tags": [
         "memberships"
        ]
       },
       "put": {
        "operationId": "put_api_v1_projects_project_identity_memberships_identityId",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "path",
          "name": "identityId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "properties": {
             "roles": {
              "items": {
               "$ref": "#/components/schemas/RoleGrant"
              },
              "type": "array"
             }
            },
            "required": [
             "roles"
            ],
            "type": "object"
           }
          }
         },
         "required": true
        },
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "identityMembership": {
               "$ref": "#/components/schemas/Membership"
              }
             },
             "required": [
              "identityMembership"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Set an identity's roles in the project (roles may be temporary)",
        "tags": [
         "memberships"
        ]
       }
      },
      "/api/v1/projects/{project}/identity-privileges": {
       "get": {
        "operationId": "get_api_v1_projects_project_identity_privileges",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "privileges": {
               "items": {
                "$ref": "#/components/schemas/Privilege"
               },
               "type": "array"
              }
             },
             "required": [
              "privileges"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "List additional privileges",
        "tags": [
         "privileges"
        ]
       },
       "post": {
        "operationId": "post_api_v1_projects_project_identity_privileges",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "$ref": "#/components/schemas/PrivilegeSpec"
           }
          }
         },
         "required": true
        },
        "responses": {
         "201": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "privilege": {
               "$ref": "#/components/schemas/Privilege"
              }
             },
             "required": [
              "privilege"
             ],
             "type": "object"
            }
           }
          },
          "description": "Created"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "409": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Conflict"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Grant an additional (optionally temporary) privilege",
        "tags": [
         "privileges"
        ]
       }
      },
      "/api/v1/projects/{project}/identity-privileges/{privilegeId}": {
       "delete": {
        "operationId": "delete_api_v1_projects_project_identity_privileges_privilegeId",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "path",
          "name": "privilegeId",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "204": {
          "description": "Done"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Delete an additional privilege",
        "tags": [
         "privileges"
        ]
       }
      },
      "/api/v1/projects/{project}/roles": {
       "get": {
        "operationId": "get_api_v1_projects_project_roles",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "roles": {
               "items": {
                "$ref": "#/components/schemas/Role"
               },
               "type": "array"
              }
             },
             "required": [
              "roles"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "List built-in and custom roles",
        "tags": [
         "roles"
        ]
       },
       "post": {
        "operationId": "post_api_v1_projects_project_roles",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "$ref": "#/components/schemas/RoleSpec"
           }
          }
         },
         "required": true
        },
        "responses": {
         "201": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "role": {
               "$ref": "#/components/schemas/Role"
              }
             },
             "required": [
              "role"
             ],
             "type": "object"
            }
           }
          },
          "description": "Created"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "409": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Conflict"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Create a custom role",
        "tags": [
         "roles"
        ]
       }
      },
      "/api/v1/projects/{project}/roles/{slug}": {
       "delete": {
        "operationId": "delete_api_v1_projects_project_roles_slug",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "path",
          "name": "slug",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "204": {
          "description": "Done"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Delete a custom role",
        "tags": [
         "roles"
        ]
       },
       "get": {
        "operationId": "get_api_v1_projects_project_roles_slug",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "path",
          "name": "slug",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "role": {
               "$ref": "#/components/schemas/Role"
              }
             },
             "required": [
              "role"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Get a role",
        "tags": [
         "roles"
        ]
       }
      },
      "/api/v1/projects/{project}/secrets": {
       "get": {
        "operationId": "get_api_v1_projects_project_secrets",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "query",
          "name": "after",
          "required": false,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "query",
          "name": "limit",
          "required": false,
          "schema": {
           "maximum": 1000,
           "minimum": 1,
           "type": "integer"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "next": {
               "type": [
                "string",
                "null"
               ]
              },
              "secrets": {
               "items": {
                "$ref": "#/components/schemas/SecretMetadata"
               },
               "type": "array"
              }
             },
             "required": [
              "secrets"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "List secrets",
        "tags": [
         "secrets"
        ]
       }
      },
      "/api/v1/projects/{project}/secrets/{name}": {
       "delete": {
        "operationId": "delete_api_v1_projects_project_secrets_name",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "path",
          "name": "name",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "204": {
          "description": "Done"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Delete a secret",
        "tags": [
         "secrets"
        ]
       },
       "get": {
        "operationId": "get_api_v1_projects_project_secrets_name",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "path",
          "name": "name",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "secret": {
               "$ref": "#/components/schemas/SecretMetadata"
              },
              "value": {
               "type": "string"
              }
             },
             "required": [
              "secret"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Read a secret (audited)",
        "tags": [
         "secrets"
        ]
       },
       "post": {
        "operationId": "post_api_v1_projects_project_secrets_name",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "path",
          "name": "name",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "$ref": "#/components/schemas/SecretValue"
           }
          }
         },
         "required": true
        },
        "responses": {
         "201": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "secret": {
               "$ref": "#/components/schemas/SecretMetadata"
              },
              "value": {
               "type": "string"
              }
             },
             "required": [
              "secret"
             ],
             "type": "object"
            }
           }
          },
          "description": "Created"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "409": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Conflict"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Create a secret",
        "tags": [
         "secrets"
        ]
       },
       "put": {
        "operationId": "put_api_v1_projects_project_secrets_name",
        "parameters": [
         {
          "in": "path",
          "name": "project",
          "required": true,
          "schema": {
           "type": "string"
          }
         },
         {
          "in": "path",
          "name": "name",
          "required": true,
          "schema": {
           "type": "string"
          }
         }
        ],
        "requestBody": {
         "content": {
          "application/json": {
           "schema": {
            "$ref": "#/components/schemas/SecretValue"
           }
          }
         },
         "required": true
        },
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "properties": {
              "secret": {
               "$ref": "#/components/schemas/SecretMetadata"
              },
              "value": {
               "type": "string"
              }
             },
             "required": [
              "secret"
             ],
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "400": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Bad request"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         },
         "403": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Permission denied"
         },
         "404": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Not found"
         },
         "409": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Conflict"
         },
         "413": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Body too large"
         },
         "503": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Storage unavailable"
         }
        },
        "summary": "Replace a secret's value",
        "tags": [
         "secrets"
        ]
       }
      },
      "/api/v1/whoami": {
       "get": {
        "operationId": "get_api_v1_whoami",
        "responses": {
         "200": {
          "content": {
           "application/json": {
            "schema": {
             "additionalProperties": {
              "type": "string"
             },
             "type": "object"
            }
           }
          },
          "description": "OK"
         },
         "401": {
          "content": {
           "application/json": {
            "schema": {
             "$ref": "#/components/schemas/Error"
            }
           }
          },
          "description": "Unauthenticated"
         }
        },
        "summary": "The caller as the engine resolves it",
        "tags": [
         "auth"
        ]
       }
      },
      "/healthz": {
       "get": {
        "operationId": "get_healthz",
        "responses": {
         "200": {
          "content": {
           "text/plain": {
            "schema": {
             "type": "string"
            }
           }
          },
          "description": "OK"
         }
        },
        "security": [],
        "summary": "Liveness",
        "tags": [
         "operations"
        ]
       }
      },
      "/readyz": {
       "get": {
        "operationId": "get_readyz",
        "responses": {
         "200": {
          "content": {
           "text/plain": {
            "schema": {
             "type": "string"
            }
           }
          },
          "description": "OK"
         },
         "503": {
          "content": {
           "text/plain": {
            "schema": {
             "type": "string"
            }
           }
          },
          "description": "Not ready"
         }
        },
        "security": [],
        "summary": "Readiness (503 with the reason when not ready)",
        "tags": [
         "operations"
        ]
       }
      }
     },
     "security": [
      {
       "mutualTLS": []
      },
      {
       "bearer": []
      }
     ],
     "servers": [
      {
       "url": "https://localhost:8443"
      }
     ]
    }
    """#
}
