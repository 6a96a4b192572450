<?php
/*
 * The test IdP's one way to sign in: exampleauth:UserPass with the users the test support
 * generated (passwords included) in settings.json, each with its attributes.
 */

$settings = json_decode(file_get_contents(__DIR__ . '/settings.json'), true);

$users = ['exampleauth:UserPass'];
foreach ($settings['users'] as $login => $user) {
    $users[$login . ':' . $user['password']] = $user['attributes'];
}

$config = [
    'admin' => ['core:AdminPassword'],
    'test-users' => $users,
];
