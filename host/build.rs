//! Compiles the GLSL shaders in `shaders/` to SPIR-V with `glslc` (from the
//! `glslc` apt package) into `OUT_DIR`, where `src/workloads/orbit/render/pipeline.rs`
//! includes them with `include_bytes!`.

use std::env;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::Command;

const SHADERS: [&str; 2] = ["game.vert", "game.frag"];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=shaders");
    for name in SHADERS {
        let src = PathBuf::from("shaders").join(name);
        println!("cargo:rerun-if-changed={}", src.display());
        let dst = out_dir.join(format!("{name}.spv"));
        let output = Command::new("glslc")
            .args(["--target-env=vulkan1.3", "-O", "-Werror"])
            .arg(&src)
            .arg("-o")
            .arg(&dst)
            .output();
        match output {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                panic!("`glslc` was not found on PATH; install glslc: apt-get install glslc")
            }
            Err(e) => panic!("could not run glslc on {}: {e}", src.display()),
            Ok(out) if !out.status.success() => panic!(
                "glslc failed on {} ({}):\n{}",
                src.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Ok(_) => {}
        }
    }
}
