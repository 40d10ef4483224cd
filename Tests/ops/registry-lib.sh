# Shared by the registry mirror's tests (sourced): Tests/ops/registry-test.sh and Tests/lan/registry-classroom-test.sh.

# registry_config ADDR DIR: a config for the reference registry (docker-registry) listening on ADDR, storing in DIR,
# its combined access log ("GET /v2/… HTTP/1.1" STATUS BYTES) on stdout, other logs at warn.
registry_config() {
    printf '%s\n' 'version: 0.1' 'log:' '  level: warn' '  accesslog:' '    disabled: false' \
        'storage:' '  filesystem:' "    rootdirectory: $2" 'http:' "  addr: $1"
}
