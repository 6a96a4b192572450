<?php
/*
 * The service providers the test IdP knows: one JSON file per SP in the sp/ directory next to
 * config/, written by the test support, holding the SP's SAML metadata as the broker publishes
 * it (parsed here as SimpleSAMLphp's metadata converter does) and the IdP-side options for it
 * ("overrides": encryption, signing key, NameID, attribute release, ...).
 */

$spDir = dirname(__DIR__) . '/sp';
foreach (glob($spDir . '/*.json') ?: [] as $file) {
    $sp = json_decode(file_get_contents($file), true);
    if (!is_array($sp)) {
        continue;
    }
    $entity = null;
    if (isset($sp['metadata_xml'])) {
        $entities = \SimpleSAML\Metadata\SAMLParser::parseDescriptorsString($sp['metadata_xml']);
        foreach ($entities as $parsed) {
            $entity = $parsed->getMetadata20SP();
            if ($entity !== null) {
                break;
            }
        }
    }
    $entry = array_merge($entity ?? [], $sp['overrides'] ?? []);
    if (isset($sp['entity_id'])) {
        $entry['entityid'] = $sp['entity_id'];
    }
    $metadata[$entry['entityid']] = $entry;
}
