package nic

import "github.com/miekg/dns"

// describe makes nic import the DNS library, which it must not.
func describe() int { return dns.Pack(nil) }
