module cnistack/pulumi-standins

go 1.26

require github.com/pulumi/pulumi/sdk/v3 v3.274.0
