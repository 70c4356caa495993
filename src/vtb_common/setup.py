from setuptools import find_packages, setup

package_name = 'vtb_common'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='vtb maintainers',
    maintainer_email='vtb@example.org',
    description='What every vtb node executable shares: its main().',
    license='Apache-2.0',
)
