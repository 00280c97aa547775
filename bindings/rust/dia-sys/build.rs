//! Link libdia. No outside crates: the `pkg-config` program is run directly.
//!
//!   DIA_LIB_DIR=/path/to/dir   link libdia.so from that directory (e.g. a build tree's build/lib)
//!   otherwise                  `pkg-config --libs dia` (PKG_CONFIG_PATH is honoured; PKG_CONFIG
//!                              names another pkg-config program)
//!   DIA_STATIC=1               link libdia.a and its private dependencies (pkg-config --static)
use std::env;
use std::process::Command;

fn pkg_config(args: &[&str]) -> Result<String, String> {
    let prog = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let out = Command::new(&prog)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {}", prog, e))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed: {}",
            prog,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    for v in ["DIA_LIB_DIR", "DIA_STATIC", "PKG_CONFIG_PATH", "PKG_CONFIG", "PKG_CONFIG_SYSROOT_DIR"] {
        println!("cargo:rerun-if-env-changed={}", v);
    }
    println!("cargo:rerun-if-changed=build.rs");
    let statik = env::var("DIA_STATIC").map(|v| v == "1").unwrap_or(false);

    if let Ok(dir) = env::var("DIA_LIB_DIR") {
        println!("cargo:rustc-link-search=native={}", dir);
        println!("cargo:libdir={}", dir);
        if statik {
            println!("cargo:rustc-link-lib=static=dia");
            let libs = pkg_config(&["--static", "--libs-only-l", "dia"]).unwrap_or_else(|_| {
                "-lopenblas -lcjson -lsndfile -lsamplerate -lcurl -lzstd -lgomp -lpthread -lm".to_string()
            });
            for l in libs.split_whitespace().filter_map(|t| t.strip_prefix("-l")) {
                if l != "dia" {
                    println!("cargo:rustc-link-lib={}", l);
                }
            }
        } else {
            println!("cargo:rustc-link-lib=dylib=dia");
        }
        return;
    }

    let args: &[&str] = if statik { &["--static", "--libs", "dia"] } else { &["--libs", "dia"] };
    let libs = match pkg_config(args) {
        Ok(s) => s,
        Err(e) => panic!(
            "dia-sys: libdia not found ({}). Install libdia where pkg-config finds it (PKG_CONFIG_PATH), \
             or set DIA_LIB_DIR to the directory holding libdia.so.",
            e
        ),
    };
    for tok in libs.split_whitespace() {
        if let Some(dir) = tok.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={}", dir);
            println!("cargo:libdir={}", dir);
        } else if let Some(lib) = tok.strip_prefix("-l") {
            if lib == "dia" && statik {
                println!("cargo:rustc-link-lib=static=dia");
            } else {
                println!("cargo:rustc-link-lib={}", lib);
            }
        }
    }
}
