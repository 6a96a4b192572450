<?php
/*
 * SimpleSAMLphp's main configuration for the broker's tests (tests/support/simplesamlphp.py).
 *
 * The test support copies this directory to a temporary one, writes settings.json next to this
 * file (base URL, secret salt, directories, users) and points SIMPLESAMLPHP_CONFIG_DIR here.
 * Nothing machine-specific is written in this file.
 */

$settings = json_decode(file_get_contents(__DIR__ . '/settings.json'), true);

$config = [
    'baseurlpath' => $settings['base_url'],
    'application' => ['baseURL' => $settings['base_url']],
    'certdir' => $settings['keys_dir'] . '/',
    'loggingdir' => $settings['log_dir'] . '/',
    'datadir' => $settings['data_dir'] . '/',
    'tempdir' => $settings['temp_dir'],
    'metadatadir' => $settings['metadata_dir'] . '/',
    'attributenamemapdir' => $settings['attribute_map_dir'] . '/',
    'metadata.sources' => [['type' => 'flatfile', 'directory' => $settings['metadata_dir']]],

    'technicalcontact_name' => 'Broker tests',
    'technicalcontact_email' => 'tests@example.com',
    'timezone' => 'UTC',
    'secretsalt' => $settings['secret_salt'],
    'auth.adminpassword' => $settings['admin_password'],
    'admin.protectindexpage' => true,
    'admin.protectmetadata' => false,
    'admin.checkforupdates' => false,
    // The broker's SLO endpoint and storefront live on other ports of 127.0.0.1.
    // (settings.json: regular expressions of host:port)
    'trusted.url.domains' => $settings['trusted_hosts'],
    'trusted.url.regex' => true,
    'enable.http_post' => false,

    'debug' => ['saml' => false, 'backtraces' => true, 'validatexml' => false],
    'showerrors' => true,
    'errorreporting' => false,
    'logging.level' => SimpleSAML\Logger::INFO,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'logging.processname' => 'simplesamlphp',
    'statistics.out' => [],

    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'enable.adfs-idp' => false,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true, 'admin' => true],

    'store.type' => 'phpsession',
    'session.duration' => 8 * 60 * 60,
    'session.datastore.timeout' => 4 * 60 * 60,
    'session.state.timeout' => 60 * 60,
    'session.cookie.name' => 'SimpleSAMLSessionID',
    'session.cookie.lifetime' => 0,
    'session.cookie.path' => '/',
    'session.cookie.domain' => null,
    // Plain http on 127.0.0.1: a Secure cookie would never come back.
    'session.cookie.secure' => false,
    'session.cookie.samesite' => null,
    'session.phpsession.cookiename' => 'SimpleSAML',
    'session.phpsession.savepath' => $settings['session_dir'],
    'session.phpsession.httponly' => true,
    'session.authtoken.cookiename' => 'SimpleSAMLAuthToken',
    'session.rememberme.enable' => false,

    'language.available' => ['en'],
    'language.default' => 'en',
    'language.cookie.secure' => false,
    'language.cookie.samesite' => null,
    'theme.use' => 'default',
    'template.auto_reload' => false,
    'production' => true,

    'authproc.idp' => [],
    'authproc.sp' => [],
];
