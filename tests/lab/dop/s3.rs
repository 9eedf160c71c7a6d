//! The lab's S3 server: a real moto_server (PyPI `moto[server]`) on a free loopback port,
//! killed with its whole process group on drop. Werkzeug writes one access-log line per
//! request to moto's stderr, in the order the requests were handled; the drill reads that
//! log to prove the order of PUTs. Objects are written and read back with object_store,
//! independently of the plans under test.

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

pub const KEY_ID: &str = "dop-lab-key";

/// The test kit's moto_server, with the lab's bucket and object helpers.
pub struct Moto {
    port: u16,
    server: opsplan_testkit::moto::Moto,
}

impl Moto {
    pub fn start() -> Result<Moto, String> {
        let server = opsplan_testkit::moto::Moto::start_with(&[])?;
        Ok(Moto {
            port: server.port,
            server,
        })
    }

    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// Request lines (`PUT /bucket/key HTTP/1.1`) in the order the server handled them.
    pub fn requests(&self) -> Vec<String> {
        self.server.requests()
    }

    pub fn create_bucket(&self, bucket: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        let req = format!(
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            self.port
        );
        stream.write_all(req.as_bytes()).expect("send to moto");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read from moto");
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "create bucket {bucket}: {answer}"
        );
    }

    fn store(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id(KEY_ID)
            .with_secret_access_key("lab-reader")
            .build()
            .expect("object_store client for moto")
    }

    pub fn put(&self, bucket: &str, key: &str, content: &[u8]) {
        let store = self.store(bucket);
        rt().block_on(async {
            store
                .put(&ObjPath::from(key), content.to_vec().into())
                .await
                .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e}"))
        });
    }

    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let store = self.store(bucket);
        rt().block_on(async {
            use futures::TryStreamExt;
            let metas: Vec<_> = store
                .list(None)
                .try_collect()
                .await
                .unwrap_or_else(|e| panic!("list s3://{bucket}: {e}"));
            metas.into_iter().map(|m| m.location.to_string()).collect()
        })
    }

    /// Every object of a bucket with its content.
    pub fn objects(&self, bucket: &str) -> BTreeMap<String, Vec<u8>> {
        let store = self.store(bucket);
        let keys = self.keys(bucket);
        rt().block_on(async {
            let mut out = BTreeMap::new();
            for k in keys {
                let bytes = store
                    .get(&ObjPath::from(k.as_str()))
                    .await
                    .unwrap_or_else(|e| panic!("get s3://{bucket}/{k}: {e}"))
                    .bytes()
                    .await
                    .unwrap_or_else(|e| panic!("read s3://{bucket}/{k}: {e}"));
                out.insert(k, bytes.to_vec());
            }
            out
        })
    }

    /// Deletes one object.
    pub fn delete(&self, bucket: &str, key: &str) {
        let store = self.store(bucket);
        rt().block_on(async {
            store
                .delete(&ObjPath::from(key))
                .await
                .unwrap_or_else(|e| panic!("delete s3://{bucket}/{key}: {e}"));
        });
    }

    /// Deletes every object of a bucket (the bucket stays).
    pub fn wipe(&self, bucket: &str) -> usize {
        let store = self.store(bucket);
        let keys = self.keys(bucket);
        rt().block_on(async {
            for k in &keys {
                store
                    .delete(&ObjPath::from(k.as_str()))
                    .await
                    .unwrap_or_else(|e| panic!("delete s3://{bucket}/{k}: {e}"));
            }
        });
        keys.len()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
