//! Builders for card certificates (rcgen) and for subject DNs rcgen cannot express (multi-valued RDNs).
#![allow(dead_code)] // each test file uses its own part of the builders

use rcgen::{CertificateParams, CustomExtension, DistinguishedName, DnType, KeyPair, SerialNumber, date_time_ymd};

pub const SN: u8 = 4;
pub const CN: u8 = 3;
pub const C: u8 = 6;
pub const O: u8 = 10;
pub const OU: u8 = 11;
pub const TITLE: u8 = 12;
pub const GN: u8 = 42;
pub const PSEUDONYM: u8 = 65;

/// A self-signed certificate whose subject has one RDN per `(2.5.4.x, value)` pair, in order.
pub fn certificate(subject: &[(u8, &str)], extensions: &[(&[u64], Vec<u8>)]) -> Vec<u8> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for (attr, value) in subject {
        let ty = match *attr {
            CN => DnType::CommonName,
            O => DnType::OrganizationName,
            OU => DnType::OrganizationalUnitName,
            C => DnType::CountryName,
            other => DnType::CustomDnType(vec![2, 5, 4, u64::from(other)]),
        };
        dn.push(ty, *value);
    }
    params.distinguished_name = dn;
    params.serial_number = Some(SerialNumber::from(vec![0x01, 0x23, 0xab]));
    params.not_before = date_time_ymd(2026, 1, 1);
    params.not_after = date_time_ymd(2029, 1, 1);
    params.custom_extensions =
        extensions.iter().map(|(oid, value)| CustomExtension::from_oid_content(oid, value.clone())).collect();
    let key = KeyPair::generate().expect("a test key");
    params.self_signed(&key).expect("a test certificate").der().to_vec()
}

/// DER of a `Name`: each inner slice is one RDN (a SET), so `&[&[(SN, …), (CN, …), (GN, …)]]` is `SN+CN+GN`.
pub fn name_der(rdns: &[&[(u8, &str)]]) -> Vec<u8> {
    let rdns: Vec<u8> = rdns
        .iter()
        .flat_map(|rdn| {
            let attrs: Vec<u8> = rdn
                .iter()
                .flat_map(|(attr, value)| {
                    let mut atv = tlv(0x06, &[0x55, 0x04, *attr]);
                    atv.extend(tlv(0x0c, value.as_bytes()));
                    tlv(0x30, &atv)
                })
                .collect();
            tlv(0x31, &attrs)
        })
        .collect();
    tlv(0x30, &rdns)
}

/// One DER tag-length-value.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}
