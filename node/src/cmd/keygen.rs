//! `buildmesh keygen`

use crate::cli::{IdArgs, KeygenArgs};
use crate::data_dir::DataDir;
use crate::keyfile;
use buildmesh_protocol::PublicKey;
use ed25519_dalek::SigningKey;
use std::process::ExitCode;

/// Writes a fresh key and prints its public half on stdout.
pub fn run(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let path = args
        .out
        .unwrap_or_else(|| DataDir::resolve(args.data_dir.data_dir).key_file());
    let key = SigningKey::generate(&mut rand::rng());
    keyfile::write_new(&path, &key, args.force)?;
    eprintln!(
        "wrote secret key to {} (readable by you only)",
        path.display()
    );
    println!("{}", PublicKey::from(key.verifying_key()));
    Ok(ExitCode::SUCCESS)
}

/// Prints the public key of an existing key file.
pub fn show(args: IdArgs) -> anyhow::Result<ExitCode> {
    let path = args
        .key
        .unwrap_or_else(|| DataDir::for_command(args.data_dir.data_dir).key_file());
    let key = keyfile::read(&path)?;
    println!("{}", PublicKey::from(key.verifying_key()));
    Ok(ExitCode::SUCCESS)
}
