module arena.local/toolchain/runc

go 1.26.0

require (
	github.com/opencontainers/runc v1.4.4
)
