//! Third-party ASIO hosts, built from their released sources: fetched from
//! Debian's mirror, checked against a pinned sha256, unpacked and
//! cross-built with mingw-w64 against the project's SDK-compatible host
//! glue (asio-bridge/sdk/). Everything lands in target/third-party/ and is
//! reused while the sources and the glue are unchanged.

use crate::{output_text, root, run_with_timeout};
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

/// Which Windows a host is built for: x64, or i386 for the 32-bit driver.
#[derive(Clone, Copy)]
pub enum Bits {
    X64,
    I386,
}

impl Bits {
    fn cxx(self) -> &'static str {
        match self {
            Bits::X64 => "x86_64-w64-mingw32-g++",
            Bits::I386 => "i686-w64-mingw32-g++",
        }
    }

    /// What to install where the compiler is missing.
    fn need(self) -> &'static str {
        match self {
            Bits::X64 => "install g++-mingw-w64-x86-64; tools/install-deps does",
            Bits::I386 => "install g++-mingw-w64-i686; tools/install-deps does",
        }
    }

    /// The build directory's suffix.
    fn suffix(self) -> &'static str {
        match self {
            Bits::X64 => "",
            Bits::I386 => "-i386",
        }
    }
}

/// RtAudio 5.2.0 as Debian ships it (Debian removed the bundled ASIO SDK
/// files; the glue stands in for them).
const RTAUDIO_URL: &str = "http://deb.debian.org/debian/pool/main/r/rtaudio/rtaudio_5.2.0~ds1.orig.tar.xz";
const RTAUDIO_SHA256: &str = "a18ab2e3a7bcc4755709ad3b86bf85cc829e5ad65fe59d6d4e8bcce2a7d669ef";
const RTAUDIO_DIR: &str = "rtaudio-5.2.0";

fn dir() -> PathBuf {
    root().join("target/third-party")
}

fn run(cmd: &mut Command, what: &str) {
    let out = run_with_timeout(cmd, Duration::from_secs(300));
    assert!(out.status.success(), "{what} failed: {}", output_text(&out));
}

/// The tarball at `url` (downloaded once into target/third-party/), checked
/// against `sha256` every time, unpacked there; returns the directory it
/// unpacks to, `unpacked`.
fn fetch(url: &str, sha256: &str, unpacked: &str) -> PathBuf {
    let dir = dir();
    fs::create_dir_all(&dir).unwrap();
    let tarball = dir.join(url.rsplit('/').next().unwrap());
    if !tarball.exists() {
        let partial = tarball.with_extension("partial");
        run(Command::new("curl").args(["-fsSL", "--retry", "3", "-o"]).arg(&partial).arg(url), &format!("downloading {url} (install curl)"));
        fs::rename(&partial, &tarball).unwrap();
    }
    let out = Command::new("sha256sum").arg(&tarball).output().expect("sha256sum (coreutils)");
    let sum = String::from_utf8_lossy(&out.stdout);
    assert!(
        sum.split_whitespace().next() == Some(sha256),
        "{} has sha256 {sum}, not {sha256}: delete it to fetch it again",
        tarball.display()
    );
    let source = dir.join(unpacked);
    if !source.exists() {
        let _ = fs::remove_dir_all(dir.join("unpacking"));
        fs::create_dir_all(dir.join("unpacking")).unwrap();
        run(Command::new("tar").arg("-xf").arg(&tarball).arg("-C").arg(dir.join("unpacking")), "unpacking");
        fs::rename(dir.join("unpacking").join(unpacked), &source).unwrap();
        fs::remove_dir_all(dir.join("unpacking")).unwrap();
    }
    source
}

fn modified(path: &Path) -> SystemTime {
    fs::metadata(path).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The glue's sources: what every third-party build depends on.
fn glue() -> Vec<PathBuf> {
    let sdk = root().join("asio-bridge/sdk");
    let mut files: Vec<PathBuf> = fs::read_dir(&sdk).unwrap().map(|e| e.unwrap().path()).collect();
    files.push(root().join("asio-bridge/pe/asio.h"));
    files
}

/// Whether `out` is newer than all of `inputs` and the glue.
fn fresh(out: &Path, inputs: &[PathBuf]) -> bool {
    let newest = inputs.iter().chain(&glue()).map(|p| modified(p)).max().unwrap();
    out.exists() && modified(out) > newest
}

/// Compiles each of `sources` (C or C++ by suffix, with the glue's
/// headers) into `objects/<file name>.o`, all at once, where the object is
/// stale; returns the objects.
fn compile(bits: Bits, sources: &[PathBuf], objects: &Path, flags: &[String]) -> Vec<PathBuf> {
    fs::create_dir_all(objects).unwrap();
    let outs: Vec<PathBuf> = sources.iter().map(|s| objects.join(format!("{}.o", s.file_name().unwrap().to_string_lossy()))).collect();
    std::thread::scope(|scope| {
        for (source, out) in sources.iter().zip(&outs).filter(|(s, o)| !fresh(o, std::slice::from_ref(s))) {
            scope.spawn(move || {
                let lang = if source.extension().is_some_and(|e| e == "c") { "-xc" } else { "-xc++" };
                let partial = out.with_extension("partial");
                run(
                    Command::new(bits.cxx())
                        .args(["-O1", "-c", "-o"])
                        .arg(&partial)
                        .args(flags)
                        .arg(format!("-I{}", root().join("asio-bridge/sdk").display()))
                        .arg(lang)
                        .arg(source),
                    &format!("compiling {} ({})", source.display(), bits.need()),
                );
                fs::rename(&partial, out).unwrap();
            });
        }
    });
    outs
}

/// Links `objects` into the Windows program `out` where it is stale:
/// statically, so Wine needs no DLL beyond its own.
fn link(bits: Bits, out: &Path, objects: &[PathBuf]) {
    if fresh(out, objects) {
        return;
    }
    let partial = out.with_extension("partial");
    run(
        Command::new(bits.cxx())
            .args(["-s", "-o"])
            .arg(&partial)
            .args(objects)
            .args(["-static", "-static-libgcc", "-static-libstdc++", "-lole32", "-luuid", "-ladvapi32", "-luser32", "-lwinmm"]),
        &format!("linking {} ({})", out.display(), bits.need()),
    );
    fs::rename(&partial, out).unwrap();
}

/// RtAudio's test programs built for `bits` with its ASIO backend; returns
/// the directory holding `<program>.exe` for each of `programs` (names of
/// RtAudio's tests/*.cpp).
pub fn rtaudio(bits: Bits, programs: &[&str]) -> PathBuf {
    let source = fetch(RTAUDIO_URL, RTAUDIO_SHA256, RTAUDIO_DIR);
    let bin = dir().join(format!("{RTAUDIO_DIR}-asio{}", bits.suffix()));
    fs::create_dir_all(&bin).unwrap();
    let flags = ["-D__WINDOWS_ASIO__".to_owned(), format!("-I{}", source.display())];
    let mut sources = vec![source.join("RtAudio.cpp"), root().join("asio-bridge/sdk/asio.cpp")];
    sources.extend(programs.iter().map(|p| source.join(format!("tests/{p}.cpp"))));
    let objects = compile(bits, &sources, &bin.join("objects"), &flags);
    let (library, mains) = objects.split_at(2);
    for (program, main) in programs.iter().zip(mains) {
        link(bits, &bin.join(format!("{program}.exe")), &[library, std::slice::from_ref(main)].concat());
    }
    bin
}

/// PortAudio 19.6.0 as Debian ships it (no ASIO SDK inside either).
const PORTAUDIO_URL: &str = "http://deb.debian.org/debian/pool/main/p/portaudio19/portaudio19_19.6.0.orig.tar.gz";
const PORTAUDIO_SHA256: &str = "f5a21d7dcd6ee84397446fa1fa1a0675bb2e8a4a6dceb4305a8404698d8d1513";
const PORTAUDIO_DIR: &str = "portaudio";

/// PortAudio's example and test programs (paths under its source tree,
/// without `.c`) built with its ASIO host API alone; returns the directory
/// holding `<name>.exe` for each.
pub fn portaudio(programs: &[&str]) -> PathBuf {
    let source = fetch(PORTAUDIO_URL, PORTAUDIO_SHA256, PORTAUDIO_DIR);
    let bin = dir().join("portaudio-19.6.0-asio");
    fs::create_dir_all(&bin).unwrap();
    let common = ["pa_allocation", "pa_converters", "pa_cpuload", "pa_debugprint", "pa_dither", "pa_front", "pa_process", "pa_ringbuffer", "pa_stream", "pa_trace"];
    let win = ["pa_win_hostapis", "pa_win_util", "pa_win_waveformat", "pa_win_coinitialize"];
    let mut sources: Vec<PathBuf> = common
        .iter()
        .map(|f| source.join(format!("src/common/{f}.c")))
        .chain(win.iter().map(|f| source.join(format!("src/os/win/{f}.c"))))
        .chain([source.join("src/hostapi/asio/pa_asio.cpp"), root().join("asio-bridge/sdk/asio.cpp")])
        .collect();
    let library_len = sources.len();
    sources.extend(programs.iter().map(|p| source.join(format!("{p}.c"))));
    let mut flags: Vec<String> = ["PA_USE_ASIO=1", "PA_USE_WMME=0", "PA_USE_DS=0", "PA_USE_WASAPI=0", "PA_USE_WDMKS=0"].iter().map(|d| format!("-D{d}")).collect();
    flags.extend(["include", "src/common", "src/os/win"].iter().map(|d| format!("-I{}", source.join(d).display())));
    let objects = compile(Bits::X64, &sources, &bin.join("objects"), &flags);
    let (library, mains) = objects.split_at(library_len);
    for (program, main) in programs.iter().zip(mains) {
        let name = program.rsplit('/').next().unwrap();
        link(Bits::X64, &bin.join(format!("{name}.exe")), &[library, std::slice::from_ref(main)].concat());
    }
    bin
}
