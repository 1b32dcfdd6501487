// CoreDNS with only the plugins the real node's cluster DNS uses. The upstream binary links every plugin (cloud
// DNS providers, etcd, ...) and takes several times longer to build on two cores; the kubernetes plugin and a
// few server plugins are all a test cluster's DNS needs. Nothing is forwarded upstream: no traffic may leave.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The order in which plugins handle a query: upstream's plugin.cfg order, restricted to the plugins above.
func init() {
	dnsserver.Directives = []string{"bind", "ready", "health", "errors", "log", "loadbalance", "cache", "kubernetes"}
}

func main() {
	coremain.Run()
}
