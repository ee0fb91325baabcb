//! Nothing the API server (or anyone reaching the port) sends makes the injector panic: every
//! field of a real AdmissionReview, replaced in turn by each JSON type, still gets an
//! AdmissionReview answer.

mod support;

use mesh_injector::Config;
use mesh_injector::namespaces::Namespaces;
use mesh_injector::webhook::Injector;
use serde_json::{Value, json};

fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let token = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{prefix}/{token}"), out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                pointers(child, format!("{prefix}/{index}"), out);
            }
        }
        _ => {}
    }
    out.push(prefix);
}

#[tokio::test]
async fn every_field_replaced_by_every_type_gets_an_answer() {
    let injector = Injector {
        config: Config::default().into(),
        namespaces: Namespaces::TrustSelector,
    };
    let review = support::pod_create();
    let mut paths = Vec::new();
    pointers(&review, String::new(), &mut paths);
    let replacements = [
        Value::Null,
        json!(-1),
        json!(1.5e300),
        json!("x/~y"),
        json!([]),
        json!({}),
        json!([{"name": 7}]),
    ];
    let mut answered = 0;
    for path in &paths {
        for replacement in &replacements {
            let mut broken = review.clone();
            match broken.pointer_mut(path) {
                Some(slot) => *slot = replacement.clone(),
                None => continue,
            }
            let body = serde_json::to_vec(&broken).expect("JSON");
            let answer: Value = serde_json::from_slice(&injector.review(&body).await)
                .unwrap_or_else(|e| panic!("{path} = {replacement}: not JSON: {e}"));
            assert_eq!(answer["kind"], "AdmissionReview", "{path} = {replacement}");
            assert!(
                answer["response"]["allowed"].is_boolean(),
                "{path} = {replacement}: {answer}"
            );
            answered += 1;
        }
    }
    assert!(answered > 1000, "{answered}");
}
