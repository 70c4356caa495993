from glob import glob

from setuptools import find_packages, setup

package_name = 'vtb_bridge'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: ['web/*.html', 'web/vendor/*', 'web/vrm/*.js', 'web/vendor/three/*', 'web/vendor/three/build/*',
                                 'web/vendor/three/examples/jsm/*/*',
                                 'web/vendor/three-vrm/*', '_vendor/README.md', '_vendor/UPSTREAM.sha256',
                                 '_vendor/*/LICENSE']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
        ('share/' + package_name + '/launch', glob('launch/*.py')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='vtb maintainers',
    maintainer_email='vtb@example.org',
    description='Avatar parameters for vtb and their outputs: Socket.IO, VMC, VTube Studio, a built-in avatar page, robot-head joints.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': ['bridge_node = vtb_bridge.entry:main'],
    },
)
