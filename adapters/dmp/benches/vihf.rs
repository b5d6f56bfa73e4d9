//! VIHFs issued and signed per second (RSA-2048 seal, RSA-SHA256 and RSA-SHA1), on 1 and 2
//! threads, and the cost of putting one into a SOAP envelope. Plain `Instant` loops; run with
//! `cargo bench -p vigie-dmp --bench vihf`.
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use vigie_dmp::{
    INS_OIDS, Sealer, SignatureAlg, VihfRequest, VihfSettings, insert_security, patients_named, roles_for,
};

const RUN: Duration = Duration::from_secs(2);

fn main() {
    let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).expect("an RSA key");
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CountryName, "FR");
    p.distinguished_name.push(DnType::OrganizationName, "CENTRE HOSPITALIER DE TEST");
    p.distinguished_name.push(DnType::OrganizationalUnitName, "10B0127189");
    p.distinguished_name.push(DnType::CommonName, "Cachet Vigie");
    let cert = p.self_signed(&key).expect("a certificate");
    let sealer = Arc::new(Sealer::from_pem(&cert.pem(), &key.serialize_pem()).expect("a sealer"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs() as i64;
    let request = VihfRequest {
        idnat: "810001234567".into(),
        subject_name: "DURAND Marie, Cardiologie".into(),
        roles: roles_for(Some("10"), Some("SM26")),
        mie: "cps".into(),
        authn_instant: now - 600,
        patient_ins: "207058575627097".into(),
        purpose_of_use: "normal".into(),
        now,
    };
    for alg in [SignatureAlg::RsaSha256, SignatureAlg::RsaSha1] {
        let settings = Arc::new(VihfSettings {
            structure_id: "10B0127189".into(),
            lps_id: "01.01.01.01".into(),
            lps_homologation: "VIGIE-TEST-0001".into(),
            signature_alg: alg,
            ..VihfSettings::default()
        });
        for threads in [1usize, 2] {
            let started = Instant::now();
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (s, st, r) = (sealer.clone(), settings.clone(), request.clone());
                    std::thread::spawn(move || {
                        let mut n = 0u64;
                        let mut lat = Vec::new();
                        while started.elapsed() < RUN {
                            let t = Instant::now();
                            let v = s.issue(&st, &r).expect("a VIHF");
                            lat.push(t.elapsed());
                            std::hint::black_box(v);
                            n += 1;
                        }
                        (n, lat)
                    })
                })
                .collect();
            let mut total = 0;
            let mut lat = Vec::new();
            for h in handles {
                let (n, l) = h.join().expect("a thread");
                total += n;
                lat.extend(l);
            }
            lat.sort();
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{alg:?} {threads} thread(s): {:.0} VIHF/s (p50 {:?}, p99 {:?})",
                total as f64 / secs,
                lat[lat.len() / 2],
                lat[lat.len() * 99 / 100]
            );
        }
    }

    let settings = VihfSettings {
        structure_id: "10B0127189".into(),
        lps_id: "01".into(),
        lps_homologation: "X".into(),
        ..VihfSettings::default()
    };
    let v = sealer.issue(&settings, &request).expect("a VIHF");
    let env = format!(
        "<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:wsa=\"http://www.w3.org/2005/08/addressing\"><soap:Header><wsa:Action>urn:ihe:iti:2007:RegistryStoredQuery</wsa:Action></soap:Header><soap:Body>{}</soap:Body></soap:Envelope>",
        "<q:AdhocQueryRequest xmlns:q=\"urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0\"><q:Slot name=\"x\"/></q:AdhocQueryRequest>".repeat(20)
    );
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < RUN {
        std::hint::black_box(insert_security(env.as_bytes(), "application/soap+xml", &v.xml).expect("inserted"));
        n += 1;
    }
    println!(
        "insert_security, {}-byte envelope: {:.1} µs per call",
        env.len(),
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    // The relay's patient cross-check, on the same envelope (read before the VIHF is made).
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < RUN {
        std::hint::black_box(patients_named(env.as_bytes(), "application/soap+xml", &INS_OIDS).expect("read"));
        n += 1;
    }
    println!(
        "patients_named, {}-byte envelope: {:.1} µs per call",
        env.len(),
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
