use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bgpd::cli::decode;
use bgpd::wire::{AfiSafi, AfiSafiSet};

/// bgpd: a BGP speaker that takes over a LAN core switch's job of learning
/// Calico's pod and service routes and installing them into Linux.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print BGP messages readably: raw concatenated messages (a TCP
    /// stream's payload), hex text, or an MRT file (BGP4MP, TABLE_DUMP_V2).
    Decode {
        /// One JSON object per message (or MRT record) instead of text.
        #[arg(long)]
        json: bool,
        /// The session used 2-octet AS numbers (no 4-octet AS capability).
        /// Detected automatically when the stream holds the sender's OPEN.
        #[arg(long)]
        two_octet_as: bool,
        /// The sender used ADD-PATH path identifiers for this family
        /// (ipv4-unicast, ipv6-unicast). May be repeated.
        #[arg(long, value_name = "FAMILY")]
        add_path: Vec<AfiSafi>,
        /// The file to read, or - for standard input.
        file: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode {
            json,
            two_octet_as,
            add_path,
            file,
        } => {
            let data = if file == "-" {
                let mut v = Vec::new();
                if let Err(e) = std::io::stdin().read_to_end(&mut v) {
                    eprintln!("bgpd decode: cannot read standard input: {e}");
                    return ExitCode::from(2);
                }
                v
            } else {
                match std::fs::read(&file) {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("bgpd decode: cannot read {file}: {e}");
                        return ExitCode::from(2);
                    }
                }
            };
            let opts = decode::Options {
                json,
                two_octet_as,
                add_path: add_path.into_iter().collect::<AfiSafiSet>(),
            };
            match decode::run(&data, &opts) {
                Ok((text, clean)) => {
                    print!("{text}");
                    if clean {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("bgpd decode: {file}: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
