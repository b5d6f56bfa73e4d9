//! What a SCIM client discovers (RFC 7644 §4): the service provider's configuration, the
//! resource types and the schemas (RFC 7643 §5–§7), Vigie's health extension among them.
use serde_json::{Value, json};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// RFC 7643 §4.3: `employeeNumber` is Vigie's matricule.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Vigie's extension for health professionals: `idNat` (idNat_PS), `units` (UF codes), `metier`.
pub const VIGIE: &str = "urn:vigie:params:scim:schemas:extension:vigie:2.0:User";
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SPC: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// One attribute definition (RFC 7643 §7).
fn attr(name: &str, kind: &str, multi: bool, required: bool, description: &str) -> Value {
    json!({
        "name": name, "type": kind, "multiValued": multi, "description": description, "required": required,
        "caseExact": false, "mutability": "readWrite", "returned": "default", "uniqueness": "none",
    })
}

fn with(mut a: Value, key: &str, value: Value) -> Value {
    a[key] = value;
    a
}

fn user_schema() -> Value {
    let name = with(
        attr("name", "complex", false, false, "The person's names."),
        "subAttributes",
        json!([
            attr("formatted", "string", false, false, "The full name."),
            attr("familyName", "string", false, false, "Family name (Vigie's nom de famille)."),
            attr("givenName", "string", false, false, "Given name (Vigie's prénom)."),
        ]),
    );
    let emails = with(
        attr("emails", "complex", true, false, "E-mail addresses."),
        "subAttributes",
        json!([
            attr("value", "string", false, false, "The address."),
            attr("type", "string", false, false, "work, home or other."),
            attr("primary", "boolean", false, false, "The preferred address."),
        ]),
    );
    json!({
        "schemas": [SCHEMA], "id": USER, "name": "User", "description": "A person of the establishment",
        "attributes": [
            with(with(attr("userName", "string", false, true, "The login name: 1 to 64 ASCII letters, digits, '.', '_', '-' or '@'."), "uniqueness", json!("server")), "caseExact", json!(false)),
            name,
            attr("displayName", "string", false, false, "The name to display."),
            attr("active", "boolean", false, false, "Whether the account may log in: false ends the person's sessions and tokens."),
            emails,
        ],
        "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{USER}")},
    })
}

fn enterprise_schema() -> Value {
    json!({
        "schemas": [SCHEMA], "id": ENTERPRISE, "name": "EnterpriseUser", "description": "Enterprise User",
        "attributes": [
            with(attr("employeeNumber", "string", false, false, "Vigie's HR matricule: unique."), "uniqueness", json!("server")),
        ],
        "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{ENTERPRISE}")},
    })
}

fn vigie_schema() -> Value {
    json!({
        "schemas": [SCHEMA], "id": VIGIE, "name": "VigieUser",
        "description": "Health attributes of a professional, as Vigie's tokens and policies read them",
        "attributes": [
            with(attr("idNat", "string", false, false, "idNat_PS: 8+RPPS, 0+ADELI, 3+FINESS… (a CPS binds by it); unique."), "uniqueness", json!("server")),
            attr("units", "string", true, false, "Functional units (UF codes), the main one first."),
            attr("metier", "string", false, false, "Métier (profession)."),
        ],
        "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{VIGIE}")},
    })
}

fn group_schema() -> Value {
    let members = with(
        attr("members", "complex", true, false, "Members: provisioned Users."),
        "subAttributes",
        json!([
            with(attr("value", "string", false, false, "The User's id."), "mutability", json!("immutable")),
            with(
                with(attr("$ref", "reference", false, false, "The User's URI."), "mutability", json!("immutable")),
                "referenceTypes",
                json!(["User"])
            ),
            with(attr("display", "string", false, false, "The member's name."), "mutability", json!("readOnly")),
            with(
                with(
                    attr("type", "string", false, false, "The member's resource type: User."),
                    "mutability",
                    json!("immutable")
                ),
                "canonicalValues",
                json!(["User"])
            ),
        ]),
    );
    json!({
        "schemas": [SCHEMA], "id": GROUP, "name": "Group",
        "description": "A group; one named after a Vigie role (cards, fido2) grants it to its members",
        "attributes": [
            with(attr("displayName", "string", false, true, "The group's name: unique."), "uniqueness", json!("server")),
            members,
        ],
        "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{GROUP}")},
    })
}

/// Every schema Vigie serves.
pub fn schemas() -> Vec<Value> {
    vec![user_schema(), group_schema(), enterprise_schema(), vigie_schema()]
}

pub fn resource_types() -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE], "id": "User", "name": "User", "endpoint": "/Users",
            "description": "People of the establishment", "schema": USER,
            "schemaExtensions": [{"schema": ENTERPRISE, "required": false}, {"schema": VIGIE, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": "/scim/v2/ResourceTypes/User"},
        }),
        json!({
            "schemas": [RESOURCE_TYPE], "id": "Group", "name": "Group", "endpoint": "/Groups",
            "description": "Groups; one named after a Vigie role grants it", "schema": GROUP, "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": "/scim/v2/ResourceTypes/Group"},
        }),
    ]
}

/// RFC 7643 §5.
pub fn service_provider_config(max_results: usize) -> Value {
    json!({
        "schemas": [SPC],
        "documentationUri": "https://github.com/vigie/vigie/blob/main/docs/scim.md",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "Bearer token",
            "description": "A token of `[admin] tokens` with the role and scope `provisioning` (vigie admin new-token --role provisioning --scope provisioning)",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": "/scim/v2/ServiceProviderConfig"},
    })
}
