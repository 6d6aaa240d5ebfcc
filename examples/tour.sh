# The README's tour, runnable from the repository's root on the shipped
# examples and the shared corpus (../shared/corpus). Every line is run by
# crates/orbwatch/tests/readme_tour.rs; a trailing `# exit N` says which
# exit code the line must give (0 otherwise). $OUT is a scratch folder.
export ORBWATCH_DB="$OUT/case.db"

# Feeds: load once into the store (--db, ORBWATCH_DB, or $XDG_DATA_HOME/orbwatch/orbwatch.db),
# in any common format, detected by content.
orbwatch feed add examples/feeds/CERTFR-2021-IOC-003-IOC.csv --name certfr-apt31
orbwatch feed add ../shared/corpus/feeds/KVbotnet_IOCs.txt --name kv-botnet --format freetext
orbwatch feed add ../shared/corpus/feeds/arcanedoor-new-espionage-focused-campaign-found-targeting-perimeter-network-devices.json --name arcanedoor
orbwatch feed list --json
orbwatch feed show certfr-apt31
orbwatch feed export certfr-apt31 --to zeek > "$OUT/apt31.intel"

# Hunt: any format, compressed or not. Year-less syslog is local time
# (--timezone, default the machine's zone); every output is UTC.
orbwatch hunt --year 2021 --timezone Europe/Paris examples/logs
orbwatch hunt --year 2021 --timezone UTC --since 2021-01-01 --format jsonl -o "$OUT/findings.jsonl" --coverage "$OUT/coverage.json" examples/logs
orbwatch hunt --year 2021 --timezone UTC --since 7d examples/logs
orbwatch hunt --year 2021 --timezone UTC --fail-on in-window examples/logs   # exit 1
orbwatch hunt --year 2021 --timezone UTC --fail-on critical examples/logs   # exit 1
orbwatch hunt --no-behaviour --feed examples/feeds/CERTFR-2021-IOC-003-IOC.csv --year 2021 ../shared/corpus/auth-ssh
orbwatch hunt --year 2021 examples/logs/no-such.log   # exit 2

# Triage and reports. Ids depend on the times read: with --timezone UTC
# the sample's failed logins from 105.154.12.165 are finding 54ed30….
orbwatch hunt --feed examples/feeds/CERTFR-2021-IOC-003-IOC.csv --year 2021 --timezone UTC examples/logs
orbwatch hunts
orbwatch findings --min-severity medium
orbwatch findings show 54ed30
orbwatch triage 54ed30 --status false-positive --note "our pentest box"
orbwatch triage 54ed30
orbwatch report --org "ACME CERT" --html "$OUT/report.html" --stix "$OUT/bundle.json" --misp-sightings "$OUT/sightings.json" --misp-event "$OUT/event.json" --csv "$OUT/findings.csv"
orbwatch report --hunt 1 --html "$OUT/hunt1.html"
orbwatch report --findings "$OUT/findings.jsonl" --coverage "$OUT/coverage.json" --html "$OUT/from-file.html"

# Blocklists: never internal, special-purpose, allowlisted or resolver addresses.
orbwatch export blocklist --target nftables -o "$OUT/orbwatch.nft"
orbwatch export blocklist --target ipset --min-confidence 70 --widen /24:8 -o "$OUT/orbwatch.ipset"
orbwatch export blocklist --target zeek-intel --at 2021-06-01 -o "$OUT/orbwatch.intel"

# The shell.
orbwatch completions bash > "$OUT/orbwatch.bash"
orbwatch man > "$OUT/orbwatch.1"
