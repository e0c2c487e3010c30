//! How an API server's refusal of one object becomes an [`ObjectFailure`]: the
//! words kept, and whether retrying can help.
//!
//! In: the object (its identity and which leaves hold decrypted values) and the
//! `kube::Error`. Out: a one-line reason and a transient flag. What can go wrong is
//! the point of this module:
//!
//! - The API server quotes what it was sent. For a Secret that is the secret itself
//!   (`.stringData: expected map, got &{password=…}`, or the character of a
//!   `.dockerconfigjson` its JSON parser choked on); for any other object holding
//!   values render decrypted (a SOPS-encrypted ConfigMap or custom resource: its
//!   `sealed` leaves) it is those values. That text would travel to the JSON log,
//!   the inventory parent's status, `hawser status`, `diff`'s stderr, Events and
//!   commit statuses. So for such objects the server's text is never kept verbatim:
//!   only the field paths and the class of each problem are, rebuilt from the
//!   structured parts of the Status (its reason and causes) or from the fixed
//!   wording of the messages that have no structure.
//! - A dry run that fails because of the object itself fails the same way again.
//!   4xx answers are rejections; so are the API server's 500s for a body that does
//!   not fit the schema ("failed to create typed patch object", "failed to convert
//!   new object": invalid base64 in `data`, a string where a map belongs). Network
//!   errors, 429 and other 5xx are transient.

use kube::core::Status;

use super::ObjectFailure;
use crate::manifests::{Manifest, ObjectRef};

/// The API server's 500s that describe the request body, not the server's health.
const BODY_ERRORS: [&str; 2] = [
    "failed to create typed patch object",
    "failed to convert new object",
];

impl ObjectFailure {
    /// A failure of a request about `manifest`, worded so that nothing of a
    /// Secret's data, or of a value render decrypted, can be in it.
    pub fn from_api(manifest: &Manifest, e: &kube::Error) -> ObjectFailure {
        let reason = match e {
            kube::Error::Api(status) if withheld(manifest) => secret_reason(status),
            // Client-side errors (network, TLS, decoding the answer) never carry the
            // request body.
            e => crate::cluster::api_reason(e),
        };
        ObjectFailure {
            object: manifest.id.to_string(),
            reason,
            transient: is_transient(e),
        }
    }
}

/// The server's message about `manifest` as it may be shown (an immutable field
/// that asks for recreation): verbatim unless it could quote secret values.
pub fn shown_message(manifest: &Manifest, status: &Status) -> String {
    if withheld(manifest) {
        secret_reason(status)
    } else {
        status.message.clone()
    }
}

/// Whether the server's words about this object could quote a secret: a Secret,
/// or any object holding values render decrypted.
fn withheld(manifest: &Manifest) -> bool {
    is_secret(&manifest.id) || !manifest.sealed.is_empty()
}

fn is_secret(id: &ObjectRef) -> bool {
    id.group.is_empty() && id.kind == "Secret"
}

/// Whether retrying the same request later may succeed.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) if status.code == 500 && is_body_error(status) => false,
        other => crate::cluster::is_transient(other),
    }
}

fn is_body_error(status: &Status) -> bool {
    BODY_ERRORS.iter().any(|p| status.message.starts_with(p))
}

/// The reason for a Secret: field paths and problem classes only.
fn secret_reason(status: &Status) -> String {
    let class = if status.reason.is_empty() {
        format!("http {}", status.code)
    } else {
        status.reason.to_lowercase()
    };
    let causes: Vec<String> = status
        .details
        .iter()
        .flat_map(|d| d.causes.iter())
        .map(|c| {
            let what = cause_class(&c.reason);
            if c.field.is_empty() {
                what
            } else {
                format!("{}: {what}", c.field)
            }
        })
        .collect();
    if !causes.is_empty() {
        return format!("{class}: {}", causes.join(", "));
    }
    if let Some(shape) = schema_mismatch(&status.message) {
        return format!("{class}: {shape}");
    }
    if status.message.contains("illegal base64 data") {
        return format!("{class}: data: a value is not valid base64");
    }
    format!("{class}: the api server's message is withheld (it may quote secret data)")
}

/// `metav1.CauseType` values in words (k8s.io/apimachinery `field.ErrorType`).
fn cause_class(reason: &str) -> String {
    match reason {
        "FieldValueInvalid" => "invalid value".into(),
        "FieldValueRequired" => "required value".into(),
        "FieldValueNotFound" => "not found".into(),
        "FieldValueDuplicate" => "duplicate value".into(),
        "FieldValueNotSupported" => "unsupported value".into(),
        "FieldValueForbidden" => "forbidden".into(),
        "FieldValueTooLong" => "too long".into(),
        "FieldValueTooMany" => "too many items".into(),
        "FieldValueTypeInvalid" => "invalid type".into(),
        "" => "invalid".into(),
        // An unknown cause type is a CamelCase word from the server's code, not data.
        other if other.bytes().all(|b| b.is_ascii_alphanumeric()) => other.to_lowercase(),
        _ => "invalid".into(),
    }
}

/// structured-merge-diff's "<path>: expected <type>, got <value>" (the value
/// dropped): `.stringData: expected map` becomes `stringData: expected a map`.
fn schema_mismatch(message: &str) -> Option<String> {
    let at = message.find(": expected ")?;
    let path = message[..at].rsplit(' ').next()?.trim_start_matches('.');
    let rest = &message[at + ": expected ".len()..];
    let kind = rest.split([',', ' ']).next()?;
    let path_ok = !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".[]_-=".contains(&b));
    let article = match kind {
        "map" | "list" | "string" | "scalar" => "a ",
        _ => "",
    };
    let kind_ok = !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphabetic());
    (path_ok && kind_ok).then(|| format!("{path}: expected {article}{kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::{Body, Location, Sealed};

    fn secret() -> ObjectRef {
        ObjectRef {
            group: String::new(),
            version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some("ns".into()),
            name: "s".into(),
        }
    }

    fn manifest(id: ObjectRef) -> Manifest {
        Manifest {
            stage: id.stage(),
            id,
            object: Body::default(),
            location: Location {
                file: "f.yaml".into(),
                document: 1,
                line: None,
                item: None,
            },
            sealed: Sealed::default(),
        }
    }

    fn status(code: u16, reason: &str, message: &str) -> Status {
        let mut s = Status::failure(message, reason);
        s.code = code;
        s
    }

    fn api(status: Status) -> kube::Error {
        kube::Error::Api(Box::new(status))
    }

    /// The messages the real API server (v1.35) sent for the probe's Secrets.
    #[test]
    fn secret_errors_keep_paths_and_classes_only() {
        let cases = [
            (
                status(
                    500,
                    "",
                    "failed to create typed patch object (/s1; /v1, Kind=Secret): .stringData: expected map, got &{password=hunter2}",
                ),
                "http 500: stringData: expected a map",
                false,
            ),
            (
                status(
                    500,
                    "",
                    "failed to create typed patch object (/s3; /v1, Kind=Secret): .data: expected map, got &{aHVudGVyMg==}",
                ),
                "http 500: data: expected a map",
                false,
            ),
            (
                status(
                    500,
                    "",
                    "failed to convert new object (/s4; /v1, Kind=Secret) to proper version: unable to convert unstructured object to /v1, Kind=Secret: error decoding from json: illegal base64 data at input byte 0",
                ),
                "http 500: data: a value is not valid base64",
                false,
            ),
            (
                status(
                    500,
                    "InternalError",
                    "etcdserver: request timed out hunter2",
                ),
                "internalerror: the api server's message is withheld (it may quote secret data)",
                true,
            ),
        ];
        for (status, want, transient) in cases {
            let f = ObjectFailure::from_api(&manifest(secret()), &api(status));
            assert_eq!(f.reason, want);
            assert_eq!(f.transient, transient, "{want}");
            assert!(!f.reason.contains("hunter2") && !f.reason.contains("aHVudGVy"));
        }
    }

    #[test]
    fn causes_become_field_and_class() {
        // As the API server sent it.
        let s: Status = serde_json::from_str(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
            "message":"Secret \"s5\" is invalid: data[.dockerconfigjson]: Invalid value: \"\u003csecret contents redacted\u003e\": invalid character 'h' looking for beginning of value",
            "reason":"Invalid","details":{"name":"s5","kind":"Secret","causes":[{"reason":"FieldValueInvalid",
            "message":"Invalid value: \"\u003csecret contents redacted\u003e\": invalid character 'h' looking for beginning of value",
            "field":"data[.dockerconfigjson]"}]},"code":422}"#,
        )
        .unwrap();
        let f = ObjectFailure::from_api(&manifest(secret()), &api(s));
        assert_eq!(f.reason, "invalid: data[.dockerconfigjson]: invalid value");
        assert!(!f.transient);
    }

    #[test]
    fn other_kinds_keep_the_servers_words() {
        let mut cm = secret();
        cm.kind = "ConfigMap".into();
        let s = status(422, "Invalid", "ConfigMap \"c\" is invalid: data: bad");
        let f = ObjectFailure::from_api(&manifest(cm.clone()), &api(s));
        assert_eq!(f.reason, "invalid: ConfigMap \"c\" is invalid: data: bad");
        // A Secret of another group is not a core Secret.
        let mut other = secret();
        other.group = "example.com".into();
        let s = status(400, "BadRequest", "x: y");
        assert_eq!(
            ObjectFailure::from_api(&manifest(other), &api(s)).reason,
            "badrequest: x: y"
        );
    }

    /// A ConfigMap holding a decrypted value is worded as a Secret is.
    #[test]
    fn objects_with_decrypted_values_are_worded_as_secrets() {
        let mut cm = secret();
        cm.kind = "ConfigMap".into();
        let mut m = manifest(cm);
        m.sealed.insert("/data/token");
        let s = status(
            422,
            "Invalid",
            "ConfigMap \"c\" is invalid: data: Invalid value: \"hunter2\": bad",
        );
        let f = ObjectFailure::from_api(&m, &api(s.clone()));
        assert_eq!(
            f.reason,
            "invalid: the api server's message is withheld (it may quote secret data)"
        );
        assert!(!shown_message(&m, &s).contains("hunter2"));
        m.sealed = Sealed::default();
        assert!(shown_message(&m, &s).contains("hunter2"));
    }

    #[test]
    fn schema_mismatch_needs_the_known_shape() {
        assert_eq!(
            schema_mismatch("x: .spec.items[0]: expected list, got &{...}").as_deref(),
            Some("spec.items[0]: expected a list")
        );
        assert_eq!(schema_mismatch("nothing to see"), None);
        assert_eq!(schema_mismatch("pw=x y: expected !!, got 1"), None);
    }
}
