#!/bin/bash
# A STAND-IN for the first start of osixia/openldap:1.4.0, the Hoss `ldap` service
# (server/ldap/docker-compose.yaml: volumes ldap-vol0 at /var/lib/ldap (the data) and
# ldap-vol1 at /etc/ldap/slapd.d (the cn=config configuration); ~/.hoss/auth/config-ldap.ldif
# bound as a bootstrap LDIF; LDAP_DOMAIN, LDAP_ORGANISATION, LDAP_ADMIN_PASSWORD). It runs
# this machine's real slapd in a lab container.
# Models: when /etc/ldap/slapd.d is empty, a configuration is created (mdb database in
# /var/lib/ldap, suffix from LDAP_DOMAIN a.b.c -> dc=a,dc=b,dc=c, rootdn cn=admin,<suffix>)
# and the base entry, an admin entry and the bootstrap LDIF are loaded; otherwise slapd
# starts from the configuration and data found in the two volumes, so a restored volume pair
# is what is served.
# Cannot model: the image's TLS setup, its readonly user, its replication options, OpenLDAP
# 2.4 (this is the machine's 2.5).
set -eu
CONF=/etc/ldap/slapd.d
DATA=/var/lib/ldap
SUFFIX="dc=$(echo "$LDAP_DOMAIN" | sed 's/\./,dc=/g')"
if [ -z "$(ls -A "$CONF" 2>/dev/null)" ]; then
    echo "ldap-entrypoint: bootstrapping $SUFFIX"
    HASH=$(slappasswd -s "$LDAP_ADMIN_PASSWORD")
    cat > /tmp/slapd.conf <<CONFEOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 104857600
suffix "$SUFFIX"
rootdn "cn=admin,$SUFFIX"
rootpw $HASH
directory $DATA
CONFEOF
    # slaptest converts slapd.conf to cn=config, then fails its own test of the still
    # empty mdb database; the conversion is what is needed, checked below.
    slaptest -f /tmp/slapd.conf -F "$CONF" >/dev/null 2>&1 || true
    [ -f "$CONF/cn=config/olcDatabase={1}mdb.ldif" ] || { echo "ldap-entrypoint: no mdb database in $CONF" >&2; exit 1; }
    DC=$(echo "$LDAP_DOMAIN" | cut -d. -f1)
    { printf 'dn: %s\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\no: %s\ndc: %s\n\n' "$SUFFIX" "$LDAP_ORGANISATION" "$DC"
      printf 'dn: cn=admin,%s\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\ncn: admin\nuserPassword: %s\n\n' "$SUFFIX" "$HASH"
      cat /container/service/slapd/assets/config/bootstrap/ldif/custom/config-ldap.ldif 2>/dev/null || true
    } > /tmp/bootstrap.ldif
    slapadd -F "$CONF" -n 1 -l /tmp/bootstrap.ldif
fi
exec slapd -d 0 -h "ldap:///" -F "$CONF"
