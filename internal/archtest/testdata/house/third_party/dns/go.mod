module github.com/miekg/dns

go 1.26
