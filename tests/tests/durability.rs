//! Crash safety: `cairn up` killed with SIGKILL during a stream of writes
//! keeps every write that was answered 200, and the chain still verifies.

use cairn_e2e::{Options, Server, TempDir};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn sigkill_during_writes_loses_no_acknowledged_write() {
    let dir = TempDir::new("kill");
    let mut s = Server::start_on(dir.path(), &Options::default());
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (base, acked, stop) = (s.base.clone(), acked.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let cid = format!("w{w}-{i}");
                let body = json!({"input_text": format!("write {cid}"), "memory_lane": "shared",
                    "nodes": [{"client_id": cid, "type": "event", "text_summary": format!("payload {cid}")}]});
                match agent.post(format!("{base}/v1/memory/write")).send_json(&body) {
                    Ok(mut r) if r.status().as_u16() == 200 => {
                        let v: serde_json::Value = r.body_mut().read_json().unwrap();
                        acked.lock().unwrap().push((cid, v["commit_id"].as_str().unwrap().to_string()));
                    }
                    // Connection reset by the kill, or a refused connection after it.
                    _ => {}
                }
                i += 1;
            }
        }));
    }
    // Let a few hundred writes through, then pull the plug mid-stream.
    while acked.lock().unwrap().len() < 300 {
        std::thread::sleep(Duration::from_millis(20));
    }
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);

    let s = Server::start_on(dir.path(), &Options::default());
    for (cid, commit) in &acked {
        let r = s.post("/v1/memory/find", &json!({"client_id": cid, "include_meta": true}));
        assert_eq!(r.status, 200);
        let nodes = r.body["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 1, "acknowledged write {cid} lost after SIGKILL");
        assert_eq!(&nodes[0]["commit_id"], commit);
    }
    let v = s.post("/v1/memory/commits/verify", &json!({}));
    assert_eq!(v.body["ok"], true, "{}", v.text);
    assert!(v.body["checked"].as_i64().unwrap() >= acked.len() as i64);
    // And the server keeps writing on top of the recovered chain.
    let r = s.post("/v1/memory/write", &cairn_e2e::event_write("after", "after restart"));
    assert_eq!(r.status, 200);
    assert_eq!(s.post("/v1/memory/commits/verify", &json!({})).body["ok"], true);
}
